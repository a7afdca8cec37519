"""Rebuilding a transaction from its events: causal tree, order by sequence, failures, retries."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from tracing_app.traces.models import TraceEvent
from tracing_app.traces.summary import figures_of
from tracing_app.traces.timeline import build, describe, format_duration, status_tone

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
    # Whole hop: first attempt's start to the last attempt's end, each attempt's own figure beside it.
    assert reserve.duration_label == "1.00 s"
    assert reserve.attempt_durations == ["3.0 ms", "4.0 ms"]
    assert [segment.outcome for segment in reserve.segments] == ["retry", "ok"]


def test_the_failing_hop_is_marked_with_its_error():
    trace = build("C", checkout_events())
    (failed,) = trace.failed_hops
    assert failed.hop_id == "T2"
    assert (failed.outcome, failed.tone) == ("failed", "bad")
    assert failed.error_summary == "PaymentDeclinedError: card declined"
    assert trace.root.outcome == "ok" and trace.root.status == "202"


def test_the_waterfall_is_drawn_on_wall_clock_time():
    """A task that started 2 s into a 4 s transaction is drawn from the middle of the axis."""
    trace = build(
        "C",
        [
            event(1, "request.started", "C", method="POST", path="/checkout/"),
            event(2, "task.published", "C", name="charge", task_id="T"),
            event(3, "request.finished", "C", name="checkout", status="202", ms=100.0, skew=0.1),
            event(3, "task.started", "T", "C", name="charge", skew=2.0),
            event(4, "task.succeeded", "T", "C", name="charge", status="SUCCESS", ms=2000.0, skew=4.0),
        ],
    )
    hops = {hop.hop_id: hop for hop in trace.hops}
    assert trace.axis_ms == 4000
    assert (hops["C"].offset_pct, hops["C"].width_pct) == (0, 2.5)
    assert (hops["T"].offset_pct, hops["T"].width_pct) == (50, 50)
    assert trace.clock_skew_ms == 0


def test_each_attempt_is_its_own_segment_with_the_backoff_gap_between():
    trace = build(
        "C",
        [
            event(1, "task.started", "T", name="charge"),
            event(2, "task.retried", "T", name="charge", status="RETRY", ms=1000.0, skew=1.0),
            event(3, "task.started", "T", name="charge", retries=1, skew=3.0),
            event(4, "task.succeeded", "T", name="charge", status="SUCCESS", ms=1000.0, skew=4.0),
        ],
    )
    (hop,) = trace.hops
    first, second = hop.segments
    assert (first.offset_pct, first.width_pct, first.outcome) == (0, 25, "retry")
    assert (second.offset_pct, second.width_pct, second.outcome) == (75, 25, "ok")
    assert hop.duration_label == "4.00 s" and hop.attempt_durations == ["1.00 s", "1.00 s"]


def test_a_hop_whose_clock_runs_behind_is_drawn_after_its_cause_and_the_page_says_so():
    hops = {hop.hop_id: hop for hop in build("C", checkout_events()).hops}
    trace = build("C", checkout_events())
    assert trace.clock_skew_ms == 600_000
    assert hops["T1"].offset_pct >= hops["C"].offset_pct
    assert hops["T3"].segments[0].offset_pct >= hops["T1"].segments[0].offset_pct


def test_a_cause_is_listed_before_its_effects_at_equal_sequence_numbers():
    """A failing task publishes its compensation before its own failure is recorded: both get #16."""
    events = [
        event(15, "task.started", "CHARGE", "REQ", name="charge"),
        event(16, "task.started", "UNDO", "CHARGE", name="compensate"),
        event(16, "task.failed", "CHARGE", "REQ", name="charge", status="FAILURE", error=True),
    ]
    trace = build("C", events)
    assert [(row.event.hop_id, row.event.kind) for row in trace.rows] == [
        ("CHARGE", "task.started"),
        ("CHARGE", "task.failed"),
        ("UNDO", "task.started"),
    ]


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
    assert figures_of(failing_request).errors == 1
    # A failed task with no exception event of its own still counts, and so does each distinct error.
    assert figures_of(checkout_events()).errors == 1
    logged_then_raised = [*failing_request, event(4, "log", "R", name="app", status="ERROR", error=True)]
    assert figures_of(logged_then_raised).errors == 2


def test_a_new_attempt_sharing_a_sequence_number_with_the_last_ones_end_stays_a_new_segment():
    """The retry's message carries clock 2; the new attempt (another process, written first) takes 3,
    and so does the old attempt's "retried" event."""
    second_start = event(3, "task.started", "T", name="charge", retries=1, skew=2.0)
    events = [
        event(1, "task.started", "T", name="charge"),
        event(3, "task.retried", "T", name="charge", status="RETRY", ms=10.0, skew=1.0),
        event(4, "task.succeeded", "T", name="charge", status="SUCCESS", ms=10.0, skew=3.0),
    ]
    second_start.pk = 0
    (hop,) = build("C", [second_start, *events]).hops
    assert [segment.outcome for segment in hop.segments] == ["retry", "ok"]


def test_fault_events_read_as_what_happened():
    lines = [
        describe(event(1, "task.queued", "R", name="shop.tasks.reserve", task_id="T1", outbox=True)),
        describe(
            event(
                2,
                "task.publish_deferred",
                "R",
                name="shop.tasks.reserve",
                exception="kombu.exceptions.OperationalError",
                message="connection refused",
            )
        ),
        describe(event(3, "task.revoked", "T1", name="shop.tasks.reserve", expired=True, terminated=False)),
        describe(event(4, "transaction.resumed", "H", name="checkout stuck in paid", order_id=6)),
    ]
    assert lines == [
        "queued reserve in the outbox \u2192 T1",
        "not sent yet, kept for the relay: reserve (OperationalError: connection refused)",
        "expired before it ran",
        "resumed: checkout stuck in paid (order_id=6)",
    ]


def test_a_resumption_is_a_hop_of_one_instant_caused_by_the_job():
    events = [
        event(1, "request.started", "R", method="POST", path="/api/orders/"),
        event(2, "request.finished", "R", name="order-list", status="201", ms=3.0),
        event(3, "transaction.resumed", "H", "JOB", name="checkout stuck in paid", order_id=6, skew=60.0),
        event(4, "task.started", "T", "H", name="confirm_order", skew=61.0),
        event(5, "task.succeeded", "T", "H", name="confirm_order", status="SUCCESS", ms=4.0, skew=61.1),
    ]
    resumed = next(hop for hop in build("C", events).hops if hop.hop_id == "H")
    assert (resumed.kind, resumed.name, resumed.outcome) == ("resumed", "checkout stuck in paid", "ok")
    assert [child.hop_id for child in resumed.children] == ["T"]
