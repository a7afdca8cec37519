"""``manage.py trace`` and ``manage.py purge_traces``, and the retention setting behind them."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.traces.test_admin import fan_out
from tracing_app.checks.traces import check_trace_settings
from tracing_app.context import bind
from tracing_app.traces import recorder
from tracing_app.traces.models import DroppedEvents, Trace, TraceEvent
from tracing_app.traces.recorder import record
from tracing_app.traces.retention import parse_duration

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tracing")]


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, no_color=True)
    return out.getvalue()


def test_trace_prints_the_tree_and_the_timeline_in_causal_order():
    cid = fan_out()
    output = run("trace", cid)
    lines = output.splitlines()
    assert lines[0] == f"Trace {cid}"
    # The whole transaction's outcome, not the request's 202.
    assert lines[1].split()[0] == "FAILED" and lines[1].endswith("first to last event")
    assert lines[2] == "  1 request, 2 tasks, 1 retry, 1 error, 3 hops, 10 events"
    assert lines[3] == "  entry point checkout 202"
    tree = lines[lines.index("Causal tree") + 1 : lines.index("Timeline") - 1]
    assert [line.split("]")[1].split()[0] for line in tree if "]" in line] == [
        "checkout",
        "reserve_stock",
        "charge_card",
    ]
    assert tree[1].startswith("  └ [task] reserve_stock") and "retries=1" in tree[1]
    assert "! PaymentDeclinedError: card declined" in output
    timeline = lines[lines.index("Timeline") + 2 :]
    sequences = [int(line.split()[0]) for line in timeline]
    assert sequences == sorted(sequences) and len(sequences) == 10


def test_trace_prints_json_for_scripts():
    cid = fan_out()
    document = json.loads(run("trace", cid, "--format", "json"))
    assert [hop["name"] for hop in document["hops"]] == ["checkout", "reserve_stock", "charge_card"]
    assert document["hops"][2]["outcome"] == "failed"
    assert (document["summary"]["outcome"], document["summary"]["tasks"]) == ("failed", 2)
    assert [e["kind"] for e in document["events"]][:2] == ["request.started", "task.published"]


def test_trace_never_writes_control_characters_to_the_terminal():
    with bind("ansi-trace") as ctx:
        record("log", name="evil\x1b[2J", status="WARNING", attributes={"message": "line\nforged"})
    recorder.flush()
    output = run("trace", ctx.correlation_id, "--attributes")
    assert "\x1b" not in output and "line\nforged" not in output
    assert "evil\\x1b[2J" in output and "line\\x0aforged" in output


def test_attributes_are_wrapped_to_the_terminal_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    with bind("wrapped-trace") as ctx:
        record("log", name="app", status="WARNING", attributes={"message": "word " * 40})
    recorder.flush()
    output = run("trace", ctx.correlation_id, "--attributes")
    attribute_lines = output[output.index("       message = ") :].splitlines()
    assert len(attribute_lines) > 3 and all(len(line) <= 60 for line in attribute_lines)


def test_trace_of_an_unknown_id_fails_clearly():
    with pytest.raises(CommandError, match="No events stored for nothing-here"):
        call_command("trace", "nothing-here")


def _age(correlation_id: str, days: int) -> None:
    moment = timezone.now() - timedelta(days=days)
    TraceEvent.objects.filter(correlation_id=correlation_id).update(timestamp=moment)
    Trace.objects.filter(correlation_id=correlation_id).update(started_at=moment)


def test_purge_deletes_old_events_in_batches_and_keeps_recent_ones(store, django_assert_max_num_queries):
    old = [store() for _ in range(3)]
    for cid in old:
        _age(cid, 10)
    recent = store()
    output = run("purge_traces", "--older-than", "7d", "--batch-size", "2")
    assert output.startswith("Deleted 9 trace events and 3 traces recorded before ")
    assert not TraceEvent.objects.filter(correlation_id__in=old).exists()
    assert not Trace.objects.filter(correlation_id__in=old).exists()
    assert TraceEvent.objects.filter(correlation_id=recent).count() == 3
    assert Trace.objects.filter(correlation_id=recent).exists()


def test_purge_deletes_drop_counts_not_updated_within_the_period(tracing):
    now = timezone.now()
    for pid, age in ((1, 10), (2, 1)):
        DroppedEvents.objects.create(
            host="web-1",
            pid=pid,
            process_started=now - timedelta(days=age),
            dropped=5,
            updated_at=now - timedelta(days=age),
        )
    run("purge_traces", "--older-than", "7d")
    assert list(DroppedEvents.objects.values_list("pid", flat=True)) == [2]


def test_purge_keeps_a_long_transactions_entry_while_it_has_recent_events(store):
    cid = store()
    _age(cid, 10)
    with bind(cid):
        record("task.started", name="late")
    recorder.flush()
    run("purge_traces", "--older-than", "7d")
    assert [e.name for e in TraceEvent.objects.filter(correlation_id=cid)] == ["late"]
    assert Trace.objects.filter(correlation_id=cid).exists()


def test_purge_dry_run_counts_and_deletes_nothing(store):
    cid = store()
    _age(cid, 30)
    assert run("purge_traces", "--older-than", "P7D", "--dry-run").startswith(
        "Would delete 3 trace events and 1 traces"
    )
    assert TraceEvent.objects.filter(correlation_id=cid).count() == 3


def test_purge_defaults_to_the_retention_setting(store, settings):
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_RETENTION": "2d"}
    kept, gone = store(), store()
    _age(kept, 1)
    _age(gone, 3)
    assert "(older than 2 days, 0:00:00)" in run("purge_traces")
    assert TraceEvent.objects.filter(correlation_id=kept).exists()
    assert not TraceEvent.objects.filter(correlation_id=gone).exists()


@pytest.mark.parametrize("args", [["--older-than", "soon"], ["--older-than", "0s"], ["--batch-size", "0"]])
def test_purge_refuses_bad_input_and_deletes_nothing(store, args):
    cid = store()
    _age(cid, 30)
    with pytest.raises(CommandError):
        call_command("purge_traces", *args)
    assert TraceEvent.objects.filter(correlation_id=cid).count() == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        ("P3D", timedelta(days=3)),
        ("1 00:00:00", timedelta(days=1)),
        (3600, timedelta(hours=1)),
        (timedelta(hours=5), timedelta(hours=5)),
    ],
)
def test_durations_read_as_people_write_them(text, expected):
    assert parse_duration(text) == expected


def test_a_bad_retention_setting_is_a_system_check_error(settings):
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_RETENTION": "a while", "TRACE_BATCH_SIZE": 0}
    assert {error.id for error in check_trace_settings()} == {"tracing_app.E501", "tracing_app.E503"}
