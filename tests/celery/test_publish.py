"""The publish side on Celery's real publishing path (kombu's in-process memory transport, no worker)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from celery import signals
from django.test import override_settings
from kombu import Message

from tests.project.celery import app
from tests.taskapp import tasks
from tracing_app import ids
from tracing_app.celery import (
    CAUSATION_HEADER,
    CORRELATION_HEADER,
    HEADER_NAMES,
    MAX_HEADER_BYTES,
    ORIGIN_HEADER,
    SAMPLED_HEADER,
    SEQUENCE_HEADER,
    publish,
)
from tracing_app.context import bind, current

Drain = Callable[[], list[Message]]


def ours(message: Message) -> dict[str, object]:
    return {key: value for key, value in message.headers.items() if key in HEADER_NAMES}


def test_delay_carries_the_transaction(published: Drain) -> None:
    with bind() as ctx:
        result = tasks.record.delay("x")
        tasks.record.delay("y")
    first, second = published()
    assert first.headers["id"] == result.id
    assert ours(first) == {
        CORRELATION_HEADER: ctx.correlation_id,
        CAUSATION_HEADER: ctx.hop_id,
        SEQUENCE_HEADER: "1",
        SAMPLED_HEADER: "1",
    }
    assert second.headers[SEQUENCE_HEADER] == "2", "each publish ticks the clock"
    assert ctx.sequence == 2
    assert current() is None


def test_user_headers_survive_and_stale_copies_of_ours_are_replaced(published: Drain) -> None:
    with bind() as ctx:
        tasks.record.apply_async(
            ("x",), headers={"x_tenant": "acme", CORRELATION_HEADER: ids.new_id(), ORIGIN_HEADER: "beat"}
        )
    (message,) = published()
    assert message.headers["x_tenant"] == "acme"
    assert message.headers[CORRELATION_HEADER] == ctx.correlation_id
    assert ORIGIN_HEADER not in message.headers


def test_send_task_by_name(published: Drain) -> None:
    with bind() as ctx:
        app.send_task(tasks.record.name, args=("x",))
    (message,) = published()
    assert message.headers[CORRELATION_HEADER] == ctx.correlation_id


def test_sampling_decision_travels(published: Drain) -> None:
    with override_settings(TRACING_APP={"SAMPLE_RATE": 0.0}), bind(sampled=False):
        tasks.record.delay("x")
    (message,) = published()
    assert message.headers[SAMPLED_HEADER] == "0"


def test_publishing_without_a_transaction_mints_one_per_message(published: Drain) -> None:
    tasks.record.delay("x")
    tasks.record.delay("y")
    first, second = published()
    for message in (first, second):
        assert ids.is_valid_id(message.headers[CORRELATION_HEADER])
        assert message.headers[ORIGIN_HEADER] == "publish"
        assert message.headers[SEQUENCE_HEADER] == "1"
        assert CAUSATION_HEADER not in message.headers
        assert len(json.dumps(ours(message), separators=(",", ":"))) <= MAX_HEADER_BYTES
    assert first.headers[CORRELATION_HEADER] != second.headers[CORRELATION_HEADER]


def test_beat_marks_the_ids_it_mints(published: Drain, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(publish._origin_without_context, "origin", "publish")
    signals.beat_init.send(sender=None)
    tasks.record.delay("x")
    (message,) = published()
    assert message.headers[ORIGIN_HEADER] == "beat"


def test_republishing_outside_a_transaction_keeps_a_valid_id(published: Drain) -> None:
    kept = ids.new_id()
    tasks.record.apply_async(("x",), headers={CORRELATION_HEADER: kept, SEQUENCE_HEADER: "7"})
    tasks.record.apply_async(("y",), headers={CORRELATION_HEADER: "not valid!"})
    first, second = published()
    assert first.headers[CORRELATION_HEADER] == kept
    assert first.headers[SEQUENCE_HEADER] == "7"
    assert ids.is_valid_id(second.headers[CORRELATION_HEADER])
    assert second.headers[CORRELATION_HEADER] != "not valid!"


def test_header_bytes_on_the_wire(published: Drain) -> None:
    with bind():
        tasks.record.delay("x")
    (message,) = published()
    added = json.dumps(ours(message), separators=(",", ":")).encode()
    assert len(added) <= MAX_HEADER_BYTES
    assert all(isinstance(value, str) for value in ours(message).values())
