"""Building and parsing the task headers, and the size they add to a message."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from tracing_app import ids
from tracing_app.celery import (
    CAUSATION_HEADER,
    CORRELATION_HEADER,
    HEADER_NAMES,
    MAX_HEADER_BYTES,
    ORIGIN_HEADER,
    SAMPLED_HEADER,
    SEQUENCE_HEADER,
    read_headers,
    write_headers,
)
from tracing_app.context import TraceContext


def ours(headers: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in headers.items() if key in HEADER_NAMES}


def test_write_headers_ticks_the_clock_and_writes_only_strings() -> None:
    ctx = TraceContext(ids.new_id(), hop_id="request-hop", sequence=4, sampled=False)
    headers: dict[str, object] = {"id": "task", ORIGIN_HEADER: "beat", "x_user": 1}
    write_headers(headers, ctx)
    assert ctx.sequence == 5
    assert ours(headers) == {
        CORRELATION_HEADER: ctx.correlation_id,
        CAUSATION_HEADER: "request-hop",
        SEQUENCE_HEADER: "5",
        SAMPLED_HEADER: "0",
    }
    assert headers["x_user"] == 1, "other headers are left alone"


def test_round_trip() -> None:
    sender = TraceContext(ids.new_id(), hop_id=ids.new_id(), sequence=41)
    headers: dict[str, object] = {}
    write_headers(headers, sender)
    ctx = read_headers(headers, hop_id="task-1", parent_id="parent-task")
    assert ctx.correlation_id == sender.correlation_id
    assert ctx.causation_id == sender.hop_id
    assert ctx.hop_id == "task-1"
    assert ctx.sequence == 42
    assert ctx.sampled is True
    assert ctx.origin == "task"


def test_origin_is_kept_only_for_ids_minted_at_publish() -> None:
    correlation_id = ids.new_id()
    beat = read_headers({CORRELATION_HEADER: correlation_id, ORIGIN_HEADER: "beat"}, hop_id="t")
    assert beat.origin == "beat"
    forged = read_headers({CORRELATION_HEADER: correlation_id, ORIGIN_HEADER: "http"}, hop_id="t")
    assert forged.origin == "task"


@pytest.mark.parametrize(
    "value",
    [None, "", "bad id with spaces", 'forged\n{"level": "CRITICAL"}', 42, "x" * 500],
    ids=["missing", "empty", "spaces", "newline", "not-a-string", "too-long"],
)
def test_bad_correlation_header_gets_an_id_derived_from_the_task(
    value: object, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {} if value is None else {CORRELATION_HEADER: value}
    with caplog.at_level(logging.INFO, logger="tracing_app.celery"):
        first = read_headers(headers, hop_id="task-a", report=True)
    second = read_headers(headers, hop_id="task-a")
    other = read_headers(headers, hop_id="task-b")
    assert ids.is_valid_id(first.correlation_id)
    assert first.correlation_id == second.correlation_id, "every process reaches the same fresh ID"
    assert first.correlation_id != other.correlation_id
    assert first.origin == "task"
    (record,) = caplog.records
    assert "task-a" in record.getMessage()
    assert "\n" not in record.getMessage()
    if isinstance(value, str) and value:
        assert ids.safe_repr(value) in record.getMessage(), "the rejected value is logged escaped"


def test_bad_companions_fall_back() -> None:
    headers = {
        CORRELATION_HEADER: ids.new_id(),
        CAUSATION_HEADER: "not valid!",
        SEQUENCE_HEADER: "9" * 40,
        SAMPLED_HEADER: "yes",
    }
    ctx = read_headers(headers, hop_id="t", parent_id="parent-task-id")
    assert ctx.causation_id == "parent-task-id", "Celery's parent_id when the header is unusable"
    assert ctx.sequence == 0
    assert ctx.sampled is True, "decided again from the ID when the flag is unreadable"
    for unusable in ("-3", "\u00b2", "1e3", " 7"):
        assert read_headers({**headers, SEQUENCE_HEADER: unusable}, hop_id="t").sequence == 0


@pytest.mark.parametrize(
    ("correlation_id", "hop_id"),
    [(ids.new_id(), ids.new_id()), (str(uuid.uuid4()), str(uuid.uuid4()))],
    ids=["ulid", "uuid"],
)
def test_headers_stay_within_the_documented_bound(correlation_id: str, hop_id: str) -> None:
    ctx = TraceContext(correlation_id, hop_id=hop_id, sequence=10**17 - 2)
    headers: dict[str, str] = {}
    write_headers(headers, ctx)
    assert len(headers[SEQUENCE_HEADER]) == 17
    # As JSON (Redis, and the body of most transports) and as an AMQP 0-9-1 field table
    # (1-byte name length, name, 1-byte type, 4-byte value length, value).
    as_json = len(json.dumps(headers, separators=(",", ":")).encode())
    as_amqp = sum(1 + len(key) + 1 + 4 + len(value) for key, value in headers.items())
    assert as_json <= MAX_HEADER_BYTES
    assert as_amqp <= MAX_HEADER_BYTES
