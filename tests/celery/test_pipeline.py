"""The worker side's one pipeline: the context first, then trace events, then OpenTelemetry; teardown in
reverse, the context last."""

from __future__ import annotations

from typing import Any

import pytest

from tests.taskapp import tasks
from tracing_app import otel
from tracing_app.context import TraceContext, bind, current
from tracing_app.traces import celery_events


class Calls(list[tuple[str, str | None]]):
    """(step, hop ID current during it), in call order."""

    def note(self, step: str) -> None:
        ctx = current()
        self.append((step, ctx.hop_id if ctx is not None else None))


class Hooks:
    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    def task_started(self, ctx: TraceContext) -> None:
        self.calls.note("otel.started")

    def task_ending(self, ctx: TraceContext) -> None:
        self.calls.note("otel.ending")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    calls = Calls()
    started, ended = celery_events.task_started, celery_events.task_ended

    def task_started(*args: Any) -> None:
        calls.note("traces.started")
        started(*args)

    def task_ended(task_id: str) -> None:
        calls.note("traces.ended")
        ended(task_id)

    monkeypatch.setattr(celery_events, "task_started", task_started)
    monkeypatch.setattr(celery_events, "task_ended", task_ended)
    monkeypatch.setattr(otel, "task_hooks", Hooks(calls))
    return calls


def test_consumers_run_in_a_fixed_order_inside_the_tasks_context(calls: Calls) -> None:
    with bind() as caller:
        task_id = tasks.record.apply(("pipeline",)).id
        assert current() is caller
    assert calls == [
        ("traces.started", task_id),
        ("otel.started", task_id),
        ("otel.ending", task_id),
        ("traces.ended", task_id),
    ]
