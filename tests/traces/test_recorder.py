"""The recorder: sampling, bounded attributes, and failures that never reach the caller."""

from __future__ import annotations

import json
import logging
import os

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from tests.traces.conftest import events
from tracing_app.context import bind
from tracing_app.traces import drops, recorder
from tracing_app.traces.attributes import clean_attributes
from tracing_app.traces.models import DroppedEvents, Trace, TraceEvent
from tracing_app.traces.recorder import record

# PostgreSQL: the writer's COPY, a schema of the session and a value beyond bigint failing writes.
pytestmark = [pytest.mark.services, pytest.mark.django_db, pytest.mark.urls("tests.traces.urls")]


def test_nothing_is_recorded_outside_a_transaction(tracing):
    before = TraceEvent.objects.count()
    record("log", name="orphan", status="WARNING")
    record("error", error=True)
    assert recorder.flush() == 0
    assert TraceEvent.objects.count() == before


def test_events_carry_the_context_and_advance_its_clock(tracing):
    with bind("01JTESTCONTEXT0000000000000", causation_id="upstream-1") as ctx:
        record("request.started", attributes={"path": "/a/"})
        record("request.finished", name="a", status="200", duration_ms=3.25)
        assert ctx.sequence == 2
    assert recorder.flush() == 2
    started, finished = events("01JTESTCONTEXT0000000000000")
    assert (started.sequence, finished.sequence) == (1, 2)
    assert started.hop_id == ctx.hop_id
    assert started.causation_id == "upstream-1"
    assert started.host and started.pid
    assert finished.duration_ms == 3.25
    assert Trace.objects.get(pk="01JTESTCONTEXT0000000000000").started_at == started.timestamp


def test_unsampled_transactions_keep_only_their_errors(tracing):
    with bind(sampled=False) as ctx:
        record("request.started")
        record("log", name="x", status="WARNING", attributes={"message": "dropped"})
        record("task.failed", name="charge", status="FAILURE", error=True)
        record("error", attributes={"message": "kept"}, error=True)
        record("request.finished", status="200")
    recorder.flush()
    stored = events(ctx.correlation_id)
    assert [(e.kind, e.error) for e in stored] == [("task.failed", True), ("error", True)]


def test_disabled_recording_keeps_nothing_not_even_errors(tracing, settings):
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_ENABLED": False}
    with bind() as ctx:
        record("error", error=True)
    recorder.flush()
    assert events(ctx.correlation_id) == []


def test_attributes_are_copied_redacted_and_bounded(tracing):
    payload = {"order_id": 42, "items": ["a", "b"], "card_number": "4242424242424242"}
    with bind() as ctx:
        record(
            "task.started",
            attributes={
                "kwargs": payload,
                "Authorization": "Bearer secret",
                "nul": "a\x00b",
                "nan": float("nan"),
                "object": object(),
                "long": "x" * 10_000,
            },
        )
        payload["order_id"] = 43
    recorder.flush()
    (event,) = events(ctx.correlation_id)
    attributes = event.attributes
    assert attributes["kwargs"] == {"order_id": 42, "items": ["a", "b"], "card_number": "[redacted]"}
    assert attributes["Authorization"] == "[redacted]"
    assert attributes["nul"] == "a\ufffdb"
    assert attributes["nan"] == "nan"
    assert attributes["object"].startswith("<object object at")
    assert attributes["long"].endswith("(10000 chars)")
    assert len(attributes["long"]) < 2100


def test_oversized_attributes_shrink_to_the_limit(tracing, settings):
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_MAX_ATTRIBUTES_BYTES": 600}
    cleaned = clean_attributes({f"k{i}": "v" * 500 for i in range(40)})
    assert len(json.dumps(cleaned)) <= 600
    assert cleaned == {"truncated": True, "bytes": cleaned["bytes"]}
    shortened = clean_attributes({"a": "v" * 500, "b": "w" * 500})
    assert shortened["a"].startswith("v" * 100) and shortened["a"].endswith("(500 chars)")
    assert clean_attributes({"deep": [[[[[["too deep"]]]]]]})["deep"] == [[["[[['too deep']]]"]]]


@pytest.mark.parametrize(
    "value",
    [
        "\x01" * 150,  # 150 characters, 900 once escaped as \u0001
        '"\\' * 160,  # quotes and backslashes: two characters each
        "line\n" * 100,
        ["\x1f" * 40] * 4,
        {"nested": {"deeper": "\x02" * 120}},
    ],
)
def test_escaped_strings_count_at_their_encoded_size(tracing, settings, value):
    # Under the limit in characters, over it once encoded: the size bound must not let it through.
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_MAX_ATTRIBUTES_BYTES": 600}
    cleaned = clean_attributes({"value": value})
    assert len(json.dumps(cleaned, ensure_ascii=False)) <= 600
    assert cleaned != {"value": value}


def test_attributes_within_the_limit_are_kept_whole(tracing, settings):
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_MAX_ATTRIBUTES_BYTES": 600}
    attributes = {"quoted": '"' * 200, "number": -(2**64), "ratio": -2.2250738585072014e-308, "ok": None}
    assert len(json.dumps(attributes, ensure_ascii=False)) <= 600
    assert clean_attributes(attributes) == attributes


def test_redacted_keys_follow_the_setting(tracing, settings):
    attributes = {"SSN_last4": "1234", "password": "hunter2", "Card": {"Token": "t"}}
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_REDACT_KEYS": ("ssn", "TOKEN")}
    assert clean_attributes(attributes) == {
        "SSN_last4": "[redacted]",
        "password": "hunter2",
        "Card": {"Token": "[redacted]"},
    }
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_REDACT_KEYS": ()}
    assert clean_attributes(attributes) == attributes
    # A setting that is not a list of strings masks everything rather than leaking.
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_REDACT_KEYS": ("ssn", 7)}
    assert clean_attributes(attributes) == dict.fromkeys(attributes, "[redacted]")


def test_a_value_that_cannot_be_read_never_reaches_the_caller(tracing, caplog):
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no repr for you")

    class BrokenMapping(dict):
        def items(self):
            raise RuntimeError("broken mapping")

    with bind() as ctx, caplog.at_level(logging.WARNING, logger="tracing_app.recorder"):
        record("log", attributes={"value": Hostile()})
        record("log", attributes=BrokenMapping(a=1))
        record("log", name="after")
    recorder.flush()
    stored = events(ctx.correlation_id)
    assert [e.attributes for e in stored] == [{"value": "<unrepresentable Hostile>"}, {}]
    assert any("Could not record a 'log' trace event" in r.getMessage() for r in caplog.records)


def test_a_database_error_during_flush_is_logged_and_later_events_are_written(tracing, client, caplog):
    with connection.cursor() as cursor:
        # This session only (the test's transaction): the table is not found, a real PostgreSQL error.
        cursor.execute("CREATE SCHEMA IF NOT EXISTS tracing_app_elsewhere")
        cursor.execute("SET LOCAL search_path TO tracing_app_elsewhere")
    response = client.get("/ok/")
    assert response.status_code == 200
    with caplog.at_level(logging.WARNING, logger="tracing_app.recorder"):
        assert recorder.flush() == 0
    (warning,) = [r for r in caplog.records if r.name == "tracing_app.recorder"]
    assert warning.getMessage().startswith("Could not record 2 trace event(s): ProgrammingError:")
    assert "\n" not in warning.getMessage()

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL search_path TO public")
    cid = client.get("/ok/")["X-Correlation-ID"]
    assert recorder.flush() == 2
    assert [e.kind for e in events(cid)] == ["request.started", "request.finished"]


def test_one_bad_row_costs_only_itself(tracing, caplog):
    with bind() as ctx:
        record("log", name="before")
        # A clock value PostgreSQL's bigint cannot hold, as a corrupted message header might carry.
        recorder.emit(ctx, "log", name="corrupt", sequence=2**70)
        record("log", name="after")
    with caplog.at_level(logging.WARNING, logger="tracing_app.recorder"):
        assert recorder.flush() == 2
    assert [e.name for e in events(ctx.correlation_id)] == ["before", "after"]
    assert any("Could not record 1 trace event(s)" in r.getMessage() for r in caplog.records)


def test_a_full_buffer_drops_and_counts_instead_of_growing(tracing, settings, caplog):
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_BUFFER_SIZE": 3}
    with bind() as ctx:
        for index in range(5):
            record("log", name=f"event {index}")
    with caplog.at_level(logging.WARNING, logger="tracing_app.recorder"):
        assert recorder.flush() == 3
    assert len(events(ctx.correlation_id)) == 3
    assert any(r.getMessage().startswith("Dropped 2 trace events") for r in caplog.records)


def test_drops_are_stored_per_process_and_shown_on_the_trace_list(tracing, settings, viewer_client):
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_BUFFER_SIZE": 2}
    # Another process's count, as its writer stored it.
    DroppedEvents.objects.create(
        host="web-2", pid=77, process_started=timezone.now(), dropped=40, updated_at=timezone.now()
    )
    for _ in range(2):
        with bind():
            for index in range(5):
                record("log", name=f"event {index}")
        recorder.flush()
    (own,) = DroppedEvents.objects.filter(pid=os.getpid())
    assert own.dropped == 6
    assert drops.total() == 46
    page = viewer_client.get(reverse("admin:tracing_app_trace_changelist"))
    assert "46 trace events dropped" in page.content.decode()


def test_the_recorders_own_warnings_are_never_recorded(tracing):
    with bind() as ctx:
        logging.getLogger("tracing_app.recorder").error("could not record: %s", "boom")
        logging.getLogger("tests.traces").error("an application error")
    recorder.flush()
    assert [e.attributes["message"] for e in events(ctx.correlation_id)] == ["an application error"]
