"""Correlation IDs: minting, validating incoming values, deriving deterministic IDs.

Formats accepted from outside (each can be switched off with ``ACCEPTED_FORMATS``):

- ``ulid``: 26 Crockford base32 characters, either case, first character 0-7.
- ``uuid``: 32 hex digits, with or without the four hyphens, any version or variant
  (so nginx's ``$request_id``, 32 hex digits, passes).
- ``token``: ``ID_PATTERN`` (default ``[A-Za-z0-9._:-]+``) matched in full, at most ``MAX_ID_LENGTH``
  characters (default 128).

Anything else, including empty strings, whitespace, control characters and non-ASCII, is rejected.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from time import time_ns
from typing import Any
from uuid import UUID

from ulid import ULID

from tracing_app.conf import app_settings

__all__ = [
    "derive_id",
    "is_valid_id",
    "minted_at",
    "new_id",
    "parse_ulid",
    "safe_repr",
]

ULID_LENGTH = 26
# Mint times outside this window are not mint times: an ID derived by hashing (derive_id) has the ULID
# shape, but its "timestamp" is hash bits, almost always thousands of years away.
_EARLIEST_MINT = datetime(2016, 1, 1, tzinfo=UTC)
_LATEST_MINT_AHEAD = timedelta(days=1)
_ULID_RE = re.compile(r"[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}")
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}(-?)[0-9a-fA-F]{4}\1[0-9a-fA-F]{4}\1[0-9a-fA-F]{4}\1[0-9a-fA-F]{12}")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# 26 base32 characters hold 130 bits: 13 lookups of 10 bits each, two characters at a time.
_PAIRS = tuple(first + second for first in _CROCKFORD for second in _CROCKFORD)
_PAIR_SHIFTS = tuple(range(120, -1, -10))


def new_id() -> str:
    """A fresh ULID string (48-bit millisecond timestamp, 80 random bits): sortable, 26 characters.

    Encoded here rather than by python-ulid's generator: this is the hot path of every request, and
    python-ulid's ``str(ULID())`` costs more than 1 µs extra per ID (``python -m benchmarks --only
    id_minting``); IDs minted within one millisecond also stay independent random values, where a
    monotonic generator makes each one its neighbour plus one. Parsing goes through python-ulid.
    """
    millisecond = time_ns() // 1_000_000
    stamp = _stamp
    if stamp[0] != millisecond:
        stamp = _restamp(millisecond)
    random_part = next(_randoms, None)
    if random_part is None:
        random_part = _refill()
    return stamp[1] + random_part


# The timestamp's ten characters change once a millisecond: encoded then, and kept as one tuple, which a
# thread replaces whole.
_stamp: tuple[int, str] = (-1, "")


def _restamp(millisecond: int) -> tuple[int, str]:
    global _stamp
    _stamp = (millisecond, _encode_128(millisecond << 80)[:10])
    return _stamp


# Random parts are drawn from the OS 256 at a time, already written as their 16 characters. ``os.urandom``
# releases the GIL, and a thread that releases it waits to get it back until any busy thread (the trace
# event writer) yields it: one call per ID made every request wait on the writer. A list iterator's
# ``next`` is atomic under the GIL, so two threads never get the same value.
_RANDOM_BATCH = 256
_RANDOM_CHARACTERS = 16
# One random byte becomes one character, its low five bits: 256 is a multiple of 32, so each of the
# alphabet's characters is equally likely and 16 characters carry 80 uniformly random bits.
_BYTE_TO_CHARACTER = bytes.maketrans(bytes(range(256)), _CROCKFORD.encode() * 8)
_randoms: Iterator[str] = iter(())


def _refill() -> str:
    global _randoms
    text = os.urandom(_RANDOM_CHARACTERS * _RANDOM_BATCH).translate(_BYTE_TO_CHARACTER).decode()
    _randoms = iter([text[i : i + _RANDOM_CHARACTERS] for i in range(0, len(text), _RANDOM_CHARACTERS)])
    return next(_randoms)


def _forget_randoms() -> None:
    # A forked child must not mint its parent's next IDs.
    global _randoms
    _randoms = iter(())


os.register_at_fork(after_in_child=_forget_randoms)


def _encode_128(value: int) -> str:
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


def is_valid_id(value: str) -> bool:
    """Whether ``value`` is an acceptable correlation ID under the current settings."""
    if not value or len(value) > app_settings.MAX_ID_LENGTH:
        return False
    formats = app_settings.accepted_formats
    # Printable ASCII whatever ID_PATTERN allows: the ID goes into response headers and log lines.
    if (
        "token" in formats
        and app_settings.id_regex.fullmatch(value)
        and value.isascii()
        and value.isprintable()
    ):
        return True
    if "ulid" in formats and len(value) == ULID_LENGTH and _ULID_RE.fullmatch(value):
        return True
    return "uuid" in formats and _UUID_RE.fullmatch(value) is not None


def parse_ulid(value: str) -> ULID | None:
    """``value`` as a python-ulid ``ULID`` (either case), or None when it is not a valid ULID (an ID from
    outside may be a UUID or a token). Off the hot path: :func:`is_valid_id` keeps its one regex."""
    if len(value) != ULID_LENGTH or not _ULID_RE.fullmatch(value):
        return None
    try:
        return ULID.from_str(value.upper())
    except ValueError:
        return None


def minted_at(correlation_id: str) -> datetime | None:
    """When a ULID correlation ID was minted (its timestamp), or None: another format, or a derived ID,
    whose timestamp bits are a hash and fall outside any plausible mint time."""
    parsed = parse_ulid(correlation_id)
    if parsed is None:
        return None
    minted = parsed.datetime
    if not _EARLIEST_MINT <= minted <= datetime.now(UTC) + _LATEST_MINT_AHEAD:
        return None
    return minted


def safe_repr(value: object, limit: int = 64) -> str:
    """A printable, quoted, bounded rendering of untrusted input, for log messages.

    Control characters, double quotes (as ``\\x22``) and non-ASCII come out escaped, so a hostile value
    cannot forge log lines or break JSON; values longer than ``limit`` are cut and say how long they were.
    """
    text = value if isinstance(value, str) else repr(value)
    shown = ascii(text[:limit]).replace('"', "\\x22")
    return f"{shown}...({len(text)} chars)" if len(text) > limit else shown


def derive_id(namespace: str, *parts: Any) -> str:
    """A deterministic ID for (namespace, parts): the same inputs give the same ID in every process.

    Parts are serialised as canonical JSON (sorted keys, no whitespace) and hashed with SHA-256; the first
    128 bits are written in the ULID alphabet and length, so a derived ID passes :func:`is_valid_id`.
    Accepts JSON types plus Decimal, UUID, date/time and bytes; any other type raises ``TypeError``
    rather than hashing a ``repr`` that may differ between processes.
    """
    canonical = json.dumps(
        [namespace, *parts],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_canonical_default,
    )
    return _encode_128(int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:16], "big"))


def _canonical_default(value: Any) -> Any:
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"derive_id cannot hash a {type(value).__name__}; pass a JSON-friendly value")
