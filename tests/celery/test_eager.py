"""Eager tasks (``.apply()``, ``task_always_eager``) run inside the caller's transaction and hand the
caller back its own context."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.project.celery import app
from tests.taskapp import tasks
from tracing_app import ids
from tracing_app.context import bind, current


class SeenLog:
    """What each eager task body saw, read from the lines the test tasks log."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    def of(self, label: str, event: str = "ran") -> list[dict[str, Any]]:
        return [
            {**r.seen, "retries": r.retries}
            for r in self.caplog.records
            if getattr(r, "label", None) == label and getattr(r, "event", None) == event
        ]


@pytest.fixture
def seen(caplog: pytest.LogCaptureFixture) -> Iterator[SeenLog]:
    with caplog.at_level(logging.INFO, logger="tests.taskapp"):
        yield SeenLog(caplog)


@pytest.fixture
def always_eager() -> Iterator[None]:
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = False


def test_apply_inherits_the_callers_transaction(seen: SeenLog) -> None:
    with bind() as ctx:
        result = tasks.record.apply(("eager",))
        assert current() is ctx, "the caller's context is left in place"
    (body,) = seen.of("eager")
    assert body["correlation_id"] == ctx.correlation_id
    assert body["causation_id"] == ctx.hop_id
    assert body["hop_id"] == result.id
    assert body["sequence"] == 1
    assert ctx.sequence >= 1, "the caller's clock moved past the eager task's"
    assert current() is None


def test_always_eager_delay(seen: SeenLog, always_eager: None) -> None:
    with bind() as ctx:
        tasks.parent.delay("eager-parent")
        assert current() is ctx
    (parent,) = seen.of("eager-parent")
    (child,) = seen.of("eager-parent.child")
    assert parent["correlation_id"] == child["correlation_id"] == ctx.correlation_id
    assert child["causation_id"] == parent["hop_id"]
    assert child["sequence"] > parent["sequence"]
    assert ctx.sequence >= child["sequence"]


def test_eager_without_a_transaction_mints_and_leaves_nothing_behind(seen: SeenLog) -> None:
    tasks.record.apply(("orphan",))
    (body,) = seen.of("orphan")
    assert ids.is_valid_id(body["correlation_id"])
    assert current() is None


def test_eager_retries_keep_the_id_and_advance_the_clock(seen: SeenLog) -> None:
    with bind() as ctx:
        tasks.flaky.apply(("eager-retry", 2))
        assert current() is ctx
    attempts = seen.of("eager-retry", "attempt")
    assert [a["retries"] for a in attempts] == [0, 1, 2]
    assert {a["correlation_id"] for a in attempts} == {ctx.correlation_id}
    sequences = [a["sequence"] for a in attempts]
    assert sequences == sorted(set(sequences))


def test_eager_failure_restores_the_callers_context(seen: SeenLog) -> None:
    with bind() as ctx:
        result = tasks.failing.apply(("eager-failure",))
        assert result.failed()
        assert current() is ctx
        with pytest.raises(RuntimeError):
            tasks.failing.apply(("eager-failure",), throw=True)
        assert current() is ctx
    assert current() is None
