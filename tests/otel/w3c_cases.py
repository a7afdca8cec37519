"""The W3C Trace Context rules, as incoming headers and what must go out to the next service.

One table drives both the parser tests (tests/otel/test_tracecontext.py) and the tests over real HTTP
(tests/otel/test_w3c_service.py). Each case gives the request's headers (a list: a name may repeat), whether
the trace must be continued or restarted, and the ``tracestate`` that must go out (None: none at all).
"""

from __future__ import annotations

from dataclasses import dataclass

T = "0af7651916cd43dd8448eb211c80319c"
P = "b7ad6b7169203331"
TP = f"00-{T}-{P}-01"
TP_UNSAMPLED = f"00-{T}-{P}-00"

CONTINUED = "continued"
RESTARTED = "restarted"


@dataclass(frozen=True)
class Case:
    name: str
    headers: tuple[tuple[str, str], ...]
    trace: str
    tracestate: str | None = None


def _tp(value: str) -> tuple[tuple[str, str], ...]:
    return (("traceparent", value),)


def _ts(*values: str) -> tuple[tuple[str, str], ...]:
    return (("traceparent", TP_UNSAMPLED), *(("tracestate", value) for value in values))


_LCALPHA = "abcdefghijklmnopqrstuvwxyz"
_KEY_CHARS = _LCALPHA + "0123456789_-*/"
# Every character a value may hold: printable ASCII but ',' and '='; it may start with a space.
_VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")
_BARS = [f"bar{i:02d}={i:02d}" for i in range(1, 34)]


def _in_four_headers(members: list[str]) -> tuple[str, ...]:
    return tuple(",".join(members[i : i + 10]) for i in range(0, len(members), 10))


TRACEPARENT_CASES = [
    Case("no headers", (), RESTARTED),
    Case("valid, sampled", _tp(TP), CONTINUED),
    Case("valid, not sampled", _tp(TP_UNSAMPLED), CONTINUED),
    Case("sent twice", (("traceparent", TP), ("traceparent", f"00-{T[::-1]}-{P}-01")), RESTARTED),
    Case("name with a dash", (("trace-parent", TP),), RESTARTED),
    Case("name with a dot", (("trace.parent", TP),), RESTARTED),
    Case("name in mixed case", (("TrAcEpArEnT", TP),), CONTINUED),
    Case("name in upper case", (("TRACEPARENT", TP),), CONTINUED),
    Case("version 00, trailing dot", _tp(TP + "."), RESTARTED),
    Case("version 00, trailing field", _tp(TP + "-extra-field"), RESTARTED),
    Case("future version", _tp(f"cc-{T}-{P}-01"), CONTINUED),
    Case("future version, trailing field", _tp(f"cc-{T}-{P}-01-extra-field"), CONTINUED),
    Case("future version, no dash after flags", _tp(f"cc-{T}-{P}-01.extra"), RESTARTED),
    Case("version ff", _tp(f"ff-{T}-{P}-01"), RESTARTED),
    Case("version with a dot first", _tp(f".0-{T}-{P}-01"), RESTARTED),
    Case("version with a dot last", _tp(f"0.-{T}-{P}-01"), RESTARTED),
    Case("version of 3 digits", _tp(f"000-{T}-{P}-01"), RESTARTED),
    Case("version of 4 digits", _tp(f"0000-{T}-{P}-01"), RESTARTED),
    Case("version of 1 digit", _tp(f"0-{T}-{P}-01"), RESTARTED),
    Case("version in upper case", _tp(f"CC-{T}-{P}-01"), RESTARTED),
    Case("trace-id all zeros", _tp(f"00-{'0' * 32}-{P}-01"), RESTARTED),
    Case("trace-id with a dot first", _tp(f"00-.{T[1:]}-{P}-01"), RESTARTED),
    Case("trace-id with a dot last", _tp(f"00-{T[:-1]}.-{P}-01"), RESTARTED),
    Case("trace-id of 33 digits", _tp(f"00-{T}a-{P}-01"), RESTARTED),
    Case("trace-id of 31 digits", _tp(f"00-{T[:-1]}-{P}-01"), RESTARTED),
    Case("trace-id in upper case", _tp(f"00-{T.upper()}-{P}-01"), RESTARTED),
    Case("parent-id all zeros", _tp(f"00-{T}-{'0' * 16}-01"), RESTARTED),
    Case("parent-id with a dot first", _tp(f"00-{T}-.{P[1:]}-01"), RESTARTED),
    Case("parent-id with a dot last", _tp(f"00-{T}-{P[:-1]}.-01"), RESTARTED),
    Case("parent-id of 17 digits", _tp(f"00-{T}-{P}a-01"), RESTARTED),
    Case("parent-id of 15 digits", _tp(f"00-{T}-{P[:-1]}-01"), RESTARTED),
    Case("flags with a dot first", _tp(f"00-{T}-{P}-.1"), RESTARTED),
    Case("flags with a dot last", _tp(f"00-{T}-{P}-0."), RESTARTED),
    Case("flags of 3 digits", _tp(f"00-{T}-{P}-001"), RESTARTED),
    Case("flags of 1 digit", _tp(f"00-{T}-{P}-1"), RESTARTED),
    Case("unknown flags", _tp(f"00-{T}-{P}-ff"), CONTINUED),
    Case("leading space", _tp(" " + TP), CONTINUED),
    Case("leading tab", _tp("\t" + TP), CONTINUED),
    Case("trailing space", _tp(TP + " "), CONTINUED),
    Case("trailing tab", _tp(TP + "\t"), CONTINUED),
    Case("whitespace both sides", _tp("\t " + TP + " \t"), CONTINUED),
    Case("longer than 512 characters", _tp(f"cc-{T}-{P}-01-" + "a" * 500), RESTARTED),
]

TRACESTATE_CASES = [
    Case("tracestate without traceparent", (("tracestate", "foo=1"),), RESTARTED),
    Case(
        "tracestate with a malformed traceparent",
        (("traceparent", TP + "."), ("tracestate", "foo=1")),
        RESTARTED,
    ),
    Case("two members", _ts("foo=1,bar=2"), CONTINUED, "foo=1,bar=2"),
    Case("name with a dash", (("traceparent", TP_UNSAMPLED), ("trace-state", "foo=1")), CONTINUED),
    Case("name with a dot", (("traceparent", TP_UNSAMPLED), ("trace.state", "foo=1")), CONTINUED),
    Case("name in mixed case", (("traceparent", TP_UNSAMPLED), ("TrAcEsTaTe", "foo=1")), CONTINUED, "foo=1"),
    Case("name in upper case", (("traceparent", TP_UNSAMPLED), ("TRACESTATE", "foo=1")), CONTINUED, "foo=1"),
    Case("empty", _ts(""), CONTINUED),
    Case("empty header after one", _ts("foo=1", ""), CONTINUED, "foo=1"),
    Case("empty header before one", _ts("", "foo=1"), CONTINUED, "foo=1"),
    Case("empty members", _ts(",, foo=1 ,,\t,bar=2,"), CONTINUED, "foo=1,bar=2"),
    Case(
        "three headers, in order",
        _ts("foo=1,bar=2", "rojo=1,congo=2", "baz=3"),
        CONTINUED,
        "foo=1,bar=2,rojo=1,congo=2,baz=3",
    ),
    Case("repeated key, same value", _ts("foo=1,foo=1"), CONTINUED, "foo=1"),
    Case("repeated key, other value", _ts("foo=1,foo=2"), CONTINUED, "foo=1"),
    Case("repeated key over two headers", _ts("foo=1", "foo=2"), CONTINUED, "foo=1"),
    Case(
        "every key and value character",
        _ts(f"{_KEY_CHARS}={_VALUE_CHARS}"),
        CONTINUED,
        f"{_KEY_CHARS}={_VALUE_CHARS}",
    ),
    Case(
        "every character, tenant@system key",
        _ts(f"{_KEY_CHARS}@a-z0-9_-*/={_VALUE_CHARS}"),
        CONTINUED,
        f"{_KEY_CHARS}@a-z0-9_-*/={_VALUE_CHARS}",
    ),
    Case(
        "spaces and tabs around commas", _ts("foo=1 \t , \t bar=2, \t baz=3"), CONTINUED, "foo=1,bar=2,baz=3"
    ),
    Case(
        "tabs and spaces around commas",
        _ts("foo=1\t \t,\t \tbar=2,\t \tbaz=3"),
        CONTINUED,
        "foo=1,bar=2,baz=3",
    ),
    Case("leading space", _ts(" foo=1"), CONTINUED, "foo=1"),
    Case("leading tab", _ts("\tfoo=1"), CONTINUED, "foo=1"),
    Case("trailing space", _ts("foo=1 "), CONTINUED, "foo=1"),
    Case("trailing tab", _ts("foo=1\t"), CONTINUED, "foo=1"),
    Case("whitespace both sides", _ts("\t foo=1 \t"), CONTINUED, "foo=1"),
    Case("value starting with a space", _ts("foo= 1"), CONTINUED, "foo= 1"),
    Case("key with a space", _ts("foo =1"), CONTINUED),
    Case("key in upper case", _ts("FOO=1"), CONTINUED),
    Case("key with a dot", _ts("foo.bar=1"), CONTINUED),
    Case("key ending in '@'", _ts("foo@=1,bar=2"), CONTINUED, "foo@=1,bar=2"),
    Case("key starting with '@'", _ts("@foo=1,bar=2"), CONTINUED),
    Case("key with '@@'", _ts("foo@@bar=1,bar=2"), CONTINUED, "foo@@bar=1,bar=2"),
    Case("key with two '@'", _ts("foo@bar@baz=1,bar=2"), CONTINUED, "foo@bar@baz=1,bar=2"),
    Case("key starting with a digit", _ts("1foo=1"), CONTINUED, "1foo=1"),
    Case(
        "32 members over four headers",
        _ts(*_in_four_headers(_BARS[:32])),
        CONTINUED,
        ",".join(_BARS[:32]),
    ),
    Case(
        "33 members over four headers",
        _ts(*_in_four_headers(_BARS)),
        CONTINUED,
    ),
    Case("key of 256 characters", _ts("foo=1", "z" * 256 + "=1"), CONTINUED, "foo=1," + "z" * 256 + "=1"),
    Case("key of 257 characters", _ts("foo=1", "z" * 257 + "=1"), CONTINUED),
    Case(
        "tenant of 241, system of 14",
        _ts("foo=1", "t" * 241 + "@" + "v" * 14 + "=1"),
        CONTINUED,
        "foo=1," + "t" * 241 + "@" + "v" * 14 + "=1",
    ),
    Case("tenant of 242", _ts("foo=1", "t" * 242 + "@v=1"), CONTINUED, "foo=1," + "t" * 242 + "@v=1"),
    Case("system of 15", _ts("foo=1", "t@" + "v" * 15 + "=1"), CONTINUED, "foo=1,t@" + "v" * 15 + "=1"),
    Case("value with '='", _ts("foo=bar=baz"), CONTINUED),
    Case("empty value", _ts("foo=,bar=3"), CONTINUED),
    Case("value of 256 characters", _ts("foo=" + "v" * 256), CONTINUED, "foo=" + "v" * 256),
    Case("value of 257 characters", _ts("foo=" + "v" * 257), CONTINUED),
    Case("value ending in a space", _ts("foo=1 ,bar=2"), CONTINUED, "foo=1,bar=2"),
    Case("value with a tab", _ts("foo=a\tb"), CONTINUED),
    Case("non-ASCII value", _ts("foo=\u00e9"), CONTINUED),
    # Over 512 characters: entries over 128 characters go first, then entries from the end.
    Case(
        "over 512 characters, a long entry",
        _ts(",".join([f"k{i}=" + "v" * 60 for i in range(6)] + ["long=" + "x" * 200])),
        CONTINUED,
        ",".join(f"k{i}=" + "v" * 60 for i in range(6)),
    ),
    Case(
        "over 512 characters, short entries",
        _ts(",".join(f"k{i:02d}=" + "v" * 100 for i in range(6))),
        CONTINUED,
        ",".join(f"k{i:02d}=" + "v" * 100 for i in range(4)),
    ),
]
