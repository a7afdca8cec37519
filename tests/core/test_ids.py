import collections
import itertools
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import override_settings
from ulid import ULID

from tracing_app import derive_id, is_valid_id, new_id
from tracing_app.ids import minted_at, parse_ulid, safe_repr

HOSTILE = [
    "",
    " ",
    "abc\r\nSet-Cookie: x=1",
    "abc\ndef",
    "abc\x00",
    "abc\x1b[31m",
    "a" * 10_000,
    "ünïcödé",
    "id\u2028line",
    'abc"},"admin":true,{"x":"',
    "<script>alert(1)</script>",
    "a b",
    "a/b",
]


def test_new_id_is_a_ulid_and_unique():
    minted = [new_id() for _ in range(1000)]
    assert len(set(minted)) == 1000
    for value in minted[:10]:
        assert len(value) == 26
        assert str(ULID.from_str(value)) == value
    assert abs(ULID.from_str(minted[0]).datetime - datetime.now(UTC)).total_seconds() < 5


def test_ids_minted_in_one_millisecond_are_not_neighbours():
    minted = [ULID.from_str(new_id()) for _ in range(2000)]
    by_millisecond = {}
    for value in minted:
        by_millisecond.setdefault(value.milliseconds, []).append(int(value))
    shared = [sorted(group) for group in by_millisecond.values() if len(group) > 1]
    assert shared, "expected several IDs minted within one millisecond"
    for group in shared:
        assert all(b - a > 1 for a, b in itertools.pairwise(group))


def test_every_random_character_is_equally_likely():
    """80 random bits a ULID: each of the 16 random characters takes the 32 letters of the alphabet
    evenly (20,000 IDs: 10,000 of each expected, a standard deviation of about 98)."""
    counts = collections.Counter(character for _ in range(20_000) for character in new_id()[10:])
    assert set(counts) == set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    assert all(abs(count - 10_000) < 600 for count in counts.values()), counts


def test_a_permissive_id_pattern_still_rejects_control_characters():
    with override_settings(TRACING_APP={"ID_PATTERN": r"[\s\S]+"}):
        assert is_valid_id("order 42")
        assert not is_valid_id("a\tb")
        assert not is_valid_id("a\r\nX-Injected: 1")


@pytest.mark.parametrize(
    "value",
    [
        "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "01arz3ndektsv4rrffq69g5fav",
        str(uuid.uuid4()),
        uuid.uuid4().hex,
        "5a2c8d1e7f3b4a6c9d0e1f2a3b4c5d6e",  # nginx $request_id
        "req-42.eu:west_1",
        "x" * 128,
    ],
)
def test_valid_ids(value):
    assert is_valid_id(value)


@pytest.mark.parametrize("value", [*HOSTILE, "x" * 129])
def test_hostile_or_malformed_ids_are_rejected(value):
    assert not is_valid_id(value)


def test_formats_can_be_restricted():
    with override_settings(TRACING_APP={"ACCEPTED_FORMATS": ["ulid"]}):
        assert is_valid_id("01ARZ3NDEKTSV4RRFFQ69G5FAV")
        assert not is_valid_id(str(uuid.uuid4()))
        assert not is_valid_id("req-42")
        assert not is_valid_id("81ARZ3NDEKTSV4RRFFQ69G5FAV")  # overflows 128 bits
        assert not is_valid_id("01ARZ3NDEKTSV4RRFFQ69G5FAU")  # U is not Crockford
    with override_settings(TRACING_APP={"ACCEPTED_FORMATS": ["uuid"]}):
        assert is_valid_id(str(uuid.uuid4()).upper())
        assert not is_valid_id("5a2c8d1e-7f3b4a6c-9d0e-1f2a3b4c5d6e")  # mixed hyphenation
    with override_settings(TRACING_APP={"MAX_ID_LENGTH": 30}):
        assert not is_valid_id("x" * 31)


def test_safe_repr_escapes_and_bounds():
    assert safe_repr("a\r\nb") == "'a\\r\\nb'"
    assert "\n" not in safe_repr("x\n" * 100)
    assert safe_repr("é") == "'\\xe9'"
    assert safe_repr("y" * 10_000).endswith("...(10000 chars)")
    assert len(safe_repr("y" * 10_000)) < 100


def test_derive_id_is_deterministic_and_order_sensitive():
    a = derive_id("charge", "order-1", {"amount": Decimal("9.99"), "currency": "EUR"})
    assert a == derive_id("charge", "order-1", {"currency": "EUR", "amount": Decimal("9.99")})
    assert a != derive_id("charge", "order-2", {"amount": Decimal("9.99"), "currency": "EUR"})
    assert a != derive_id("refund", "order-1", {"amount": Decimal("9.99"), "currency": "EUR"})
    assert derive_id("x", 1, 2) != derive_id("x", 2, 1)
    assert derive_id("x", "1") != derive_id("x", 1)
    assert is_valid_id(a) and len(a) == 26


def test_derive_id_is_stable_across_processes():
    code = (
        "from decimal import Decimal; import django; from django.conf import settings; settings.configure();"
        "from tracing_app.ids import derive_id;"
        "print(derive_id('op', 'k', {'b': [1, 2], 'a': Decimal('1.50')}, {'s', 't'}))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert outputs == {derive_id("op", "k", {"b": [1, 2], "a": Decimal("1.50")}, {"s", "t"})}


def test_derive_id_refuses_unstable_types():
    with pytest.raises(TypeError, match="cannot hash a object"):
        derive_id("op", object())


def test_parse_ulid_and_mint_time():
    before = datetime.now(UTC)
    minted = new_id()
    parsed = parse_ulid(minted.lower())
    assert str(parsed) == minted
    assert before.replace(microsecond=0) <= minted_at(minted) <= datetime.now(UTC)
    for other in (str(uuid.uuid4()), "upstream-7", "8" + minted[1:], minted[:-1]):
        assert parse_ulid(other) is None
        assert minted_at(other) is None
    # A derived ID has the ULID shape, but no mint time: its timestamp bits are a hash.
    derived = derive_id("tests", "order", 42)
    assert parse_ulid(derived) is not None
    assert minted_at(derived) is None


# Python 3.12+ warns of any fork from a threaded process; the child here does its part and exits at once.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_never_mints_its_parents_next_ids() -> None:
    new_id()  # the parent holds random parts drawn ahead
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write_end, " ".join(new_id() for _ in range(20)).encode())
        os._exit(0)
    os.close(write_end)
    parent = {value[10:] for value in (new_id() for _ in range(20))}
    with os.fdopen(read_end) as pipe:
        child = {value[10:] for value in pipe.read().split()}
    os.waitpid(pid, 0)
    assert len(child) == 20
    assert not parent & child


def test_threads_minting_at_once_never_share_a_random_part() -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        batches = list(pool.map(lambda _: [new_id()[10:] for _ in range(2000)], range(8)))
    minted = [value for batch in batches for value in batch]
    assert len(set(minted)) == len(minted)
