"""The recorder's cheap paths give what the general ones give: flat attributes, event tuples, wake-ups."""

from __future__ import annotations

from typing import Any

import pytest

from tracing_app.conf import app_settings
from tracing_app.traces import attributes, buffer, writer

FLAT_CASES: list[dict[str, Any]] = [
    {},
    {"method": "GET", "path": "/orders/", "user_agent": "curl/8"},
    {"route": "orders/<int:pk>/", "count": 3, "ok": True, "missing": None, "big": -(2**70)},
    {"password": "hunter2", "api_token": 12, "Authorization": "Bearer x"},
    {"tab\tkey": "line\nbreak", "unicode": "déjà vu ✓"},
    {"long": "x" * attributes.MAX_STRING},
    {f"k{i}": i for i in range(50)},
]

GENERAL_CASES: list[dict[str, Any]] = [
    {"nul": "a\x00b"},
    {"too_long": "y" * (attributes.MAX_STRING + 1)},
    {"ratio": 0.5, "nan": float("nan")},
    {"nested": {"a": [1, 2]}},
    {f"k{i}": i for i in range(51)},
    {7: "int key"},
    {"k" * 129: "long key"},
]


@pytest.mark.parametrize("given", FLAT_CASES + GENERAL_CASES)
def test_clean_attributes_matches_the_general_copy(given):
    redact = app_settings.redact_regex
    limit = app_settings.TRACE_MAX_ATTRIBUTES_BYTES
    assert attributes.clean_attributes(given) == attributes._bounded_copy(given, redact, limit)


@pytest.mark.parametrize("given", FLAT_CASES)
def test_flat_attributes_take_the_flat_copy(given):
    copied = attributes._flat_copy(given, app_settings.redact_regex, app_settings.TRACE_MAX_ATTRIBUTES_BYTES)
    assert copied is not None
    assert copied is not given


@pytest.mark.parametrize("given", GENERAL_CASES)
def test_anything_else_takes_the_general_copy(given):
    limit = app_settings.TRACE_MAX_ATTRIBUTES_BYTES
    assert attributes._flat_copy(given, app_settings.redact_regex, limit) is None


def test_flat_attributes_over_the_size_limit_take_the_general_copy(settings):
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_MAX_ATTRIBUTES_BYTES": 100}
    given = {"a": "x" * 60, "b": "y" * 60}
    assert attributes._flat_copy(given, app_settings.redact_regex, 100) is None
    assert len(str(attributes.clean_attributes(given))) < 120


def test_tuples_become_named_rows():
    fields = tuple(range(len(buffer.PendingEvent._fields)))
    event = buffer.new_pending_event(fields)
    assert type(event) is buffer.PendingEvent
    assert event == buffer.PendingEvent(*fields)
    row = writer.new_event_row(tuple(range(len(writer.EventRow._fields))))
    assert type(row) is writer.EventRow
    assert row.attributes == len(writer.EventRow._fields) - 1


class _CountingEvent:
    def __init__(self) -> None:
        self.sets = 0

    def set(self) -> None:
        self.sets += 1


def test_the_writer_is_woken_once_per_batch_not_once_per_event(settings):
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_BATCH_SIZE": 10, "TRACE_BUFFER_SIZE": 100}
    pending = buffer.EventBuffer()
    # A writer that never runs: the buffer only fills, and each wake-up is counted.
    pending._thread = object()  # type: ignore[assignment]
    wakeup = pending._wakeup = _CountingEvent()  # type: ignore[assignment]
    event = buffer.new_pending_event(("c", "h", "", 1, "log", "", "", None, False, 0.0, "", "", {}, False))
    for _ in range(35):
        pending.enqueue(event)
    assert wakeup.sets == 1
    pending._queue.clear()
    for _ in range(10):
        pending.enqueue(event)
    assert wakeup.sets == 2
