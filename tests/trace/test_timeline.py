"""Rebuilding a transaction from its events: causal tree, order by sequence, failures, retries."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from tracing_app.traces.models import TraceEvent
from tracing_app.traces.timeline import build, format_duration, status_tone

BASE = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
_ids = itertools.count(1)


def event(seq, kind, hop, cause="", *, name="", status="", error=False, ms=None, skew=0.0, **attributes):
    return TraceEvent(
        pk=next(_ids),
        correlation_id="C",
        hop_id=hop,
        causation_id=cause,
        sequence=seq,
        kind=kind,
        name=name,
        status=status,
        error=error,
        duration_ms=ms,
        timestamp=BASE + timedelta(seconds=skew),
        host="web-1",
        attributes=attributes,
    )


def checkout_events():
    """A request fans out into two tasks; one retries then starts a child, the other fails.

    Worker clocks run ten minutes behind the web server's: order must come from the sequence alone.
    """
    return [
        event(1, "request.started", "C", method="POST", path="/checkout/"),
        event(2, "task.published", "C", name="reserve", task_id="T1"),
        event(3, "task.published", "C", name="charge", task_id="T2"),
        event(4, "request.finished", "C", name="checkout", status="202", ms=41.0),
        event(4, "task.started", "T1", "C", name="reserve", skew=-600),
        event(5, "task.started", "T2", "C", name="charge", skew=-600),
        event(5, "task.published", "T1", "C", name="reserve", skew=-600, task_id="T1", retries=1),
        event(
            6, "task.retried", "T1", "C", name="reserve", status="RETRY", ms=3.0, reason="timeout", skew=-600
        ),
        event(
            6,
            "task.failed",
            "T2",
            "C",
            name="charge",
            status="FAILURE",
            error=True,
            ms=2.0,
            skew=-600,
            exception="app.PaymentDeclinedError",
            message="card declined",
        ),
        event(7, "task.started", "T1", "T1", name="reserve", retries=1, skew=-599),
        event(8, "task.published", "T1", "T1", name="notify", task_id="T3", skew=-599),
        event(9, "task.succeeded", "T1", "T1", name="reserve", status="SUCCESS", ms=4.0, skew=-599),
        event(9, "task.started", "T3", "T1", name="notify", skew=-598),
        event(
            10, "log", "T3", "T1", name="app.mail", status="WARNING", message="no e-mail address", skew=-598
        ),
        event(11, "task.succeeded", "T3", "T1", name="notify", status="SUCCESS", ms=1.0, skew=-598),
    ]


def test_hops_form_the_causal_tree_in_causal_order():
    trace = build("C", reversed(checkout_events()))
    assert [(hop.hop_id, hop.depth, hop.kind) for hop in trace.hops] == [
        ("C", 0, "request"),
        ("T1", 1, "task"),
        ("T3", 2, "task"),
        ("T2", 1, "task"),
    ]
    assert [hop.hop_id for hop in trace.roots] == ["C"]
    assert [hop.index for hop in trace.hops] == [1, 2, 3, 4]


def test_the_timeline_follows_the_sequence_not_the_clock():
    trace = build("C", checkout_events())
    sequences = [row.event.sequence for row in trace.rows]
    assert sequences == sorted(sequences)
    assert trace.rows[0].event.kind == "request.started"
    assert trace.started_at == BASE - timedelta(seconds=600)


def test_a_retried_task_is_one_hop_with_two_attempts_and_no_self_loop():
    reserve = next(hop for hop in build("C", checkout_events()).hops if hop.hop_id == "T1")
    assert (reserve.attempts, reserve.retries, reserve.outcome, reserve.status) == (
        2,
        1,
        "retried",
        "SUCCESS",
    )
    assert reserve.parent_id == "C"
    assert reserve.duration_label == "4.0 ms"


def test_the_failing_hop_is_marked_with_its_error():
    trace = build("C", checkout_events())
    (failed,) = trace.failed_hops
    assert failed.hop_id == "T2"
    assert (failed.outcome, failed.tone) == ("failed", "bad")
    assert failed.error_summary == "PaymentDeclinedError: card declined"
    assert trace.root.outcome == "ok" and trace.root.status == "202"


def test_waterfall_bars_span_each_hop_on_the_logical_clock():
    hops = {hop.hop_id: hop for hop in build("C", checkout_events()).hops}
    assert hops["C"].offset_pct == 0
    assert hops["T3"].offset_pct > hops["T1"].offset_pct > 0
    assert 0 < hops["T3"].width_pct < hops["C"].width_pct + hops["T1"].width_pct


def test_a_parent_outside_the_trace_makes_a_root_and_is_named():
    trace = build("C", [event(3, "task.started", "T9", "gone", name="orphan")])
    (hop,) = trace.hops
    assert (hop.depth, hop.parent_id, hop.external_parent) == (0, None, "gone")


def test_causation_loops_cannot_hide_hops():
    trace = build("C", [event(1, "task.started", "A", "B"), event(2, "task.started", "B", "A")])
    assert {hop.hop_id for hop in trace.hops} == {"A", "B"}


def test_errors_only_traces_are_recognised():
    trace = build("C", [event(5, "task.failed", "T", "R", name="x", status="FAILURE", error=True)])
    assert trace.errors_only and trace.failed_hops
    assert not build("C", checkout_events()).errors_only


def test_log_rows_read_as_log_lines():
    row = next(row for row in build("C", checkout_events()).rows if row.event.kind == "log")
    assert row.summary == "[WARNING] app.mail: no e-mail address"
    assert (row.tone, row.kind_label) == ("warn", "log record")


def test_durations_and_tones_read_at_a_glance():
    assert [format_duration(ms) for ms in (None, 0.42, 12.34, 1234, 123_456)] == [
        "\u2014",
        "0.42 ms",
        "12.3 ms",
        "1.23 s",
        "2 min 03 s",
    ]
    assert [status_tone(s) for s in ("200", "404", "503", "SUCCESS", "RETRY", "FAILURE", "")] == [
        "ok",
        "warn",
        "bad",
        "ok",
        "warn",
        "bad",
        "neutral",
    ]


def test_one_exception_is_one_error():
    """A view that raises records the exception and then a 500: one failure, not two."""
    failing_request = [
        event(1, "request.started", "R", method="GET", path="/boom/"),
        event(2, "error", "R", name="RuntimeError", error=True, message="boom"),
        event(3, "request.finished", "R", name="boom", status="500", error=True, ms=2.0),
    ]
    assert build("C", failing_request).error_count == 1
    # A failed task with no exception event of its own still counts, and so does each distinct error.
    assert build("C", checkout_events()).error_count == 1
    logged_then_raised = [*failing_request, event(4, "log", "R", name="app", status="ERROR", error=True)]
    assert build("C", logged_then_raised).error_count == 2
