"""The task decorator and block, run in this process (eagerly or called directly) against PostgreSQL.

Real workers, redelivery and SIGKILL are in test_idempotency_worker.py.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from tests.idempotency.models import Effect
from tests.support.waiting import wait_until
from tests.taskapp.idempotency_tasks import effect_once
from tracing_app.conf import app_settings
from tracing_app.context import bind
from tracing_app.idempotency import store
from tracing_app.idempotency.keys import call_fingerprint
from tracing_app.idempotency.models import IdempotencyRecord
from tracing_app.idempotency.store import LeaseLost
from tracing_app.idempotency.tasks import KeyReused, StillInFlight, idempotent_block, idempotent_task
from tracing_app.traces import recorder
from tracing_app.traces.models import TraceEvent

# PostgreSQL: its claim statements and concurrent writers; the SQLite path runs again in
# test_idempotency_sqlite.py.
pytestmark = [pytest.mark.services, pytest.mark.django_db]


@idempotent_task
def pay(order: int, amount: str) -> dict[str, Any]:
    Effect.objects.create(label=f"pay-{order}", note=amount)
    return {"order": order, "amount": Decimal(amount)}


@idempotent_task(key=lambda order, note="": f"order:{order}")
def ship(order: int, note: str = "") -> None:
    Effect.objects.create(label=f"ship-{order}", note=note)


@idempotent_task
def fail_after_writing(order: int) -> None:
    Effect.objects.create(label=f"fail-{order}")
    raise RuntimeError("failed after writing")


@idempotent_task
def opaque(order: int) -> object:
    Effect.objects.create(label=f"opaque-{order}")
    return object()


def effects(label: str) -> int:
    return Effect.objects.filter(label=label).count()


def test_a_repeat_in_the_same_transaction_returns_the_stored_result() -> None:
    with bind() as ctx:
        first = pay(1, "9.99")
        again = pay(1, "9.99")
    assert first == again == {"order": 1, "amount": Decimal("9.99")}
    assert effects("pay-1") == 1
    record = IdempotencyRecord.objects.get()
    assert (record.scope, record.state, record.replay_count) == ("task", "completed", 1)
    assert record.operation == f"{__name__}.pay"
    assert record.correlation_id == ctx.correlation_id


def test_other_arguments_or_another_transaction_run_again() -> None:
    with bind():
        pay(1, "9.99")
        pay(2, "9.99")
    with bind():
        pay(1, "9.99")
    assert effects("pay-1") == 2
    assert effects("pay-2") == 1


def test_an_explicit_key_spans_transactions_and_refuses_other_arguments() -> None:
    with bind():
        ship(7, note="first")
    with bind():
        ship(7, note="first")
        with pytest.raises(KeyReused):
            ship(7, note="changed")
    assert effects("ship-7") == 1
    assert IdempotencyRecord.objects.get().client_key == "order:7"


def test_a_failure_rolls_back_and_releases_the_key() -> None:
    with bind():
        for _ in range(2):
            with pytest.raises(RuntimeError):
                fail_after_writing(3)
    assert effects("fail-3") == 0
    assert not IdempotencyRecord.objects.exists()


def test_a_result_that_is_not_json_is_not_replayed() -> None:
    with bind():
        assert opaque(4) is not None
        assert opaque(4) is None
    assert effects("opaque-4") == 1


def test_without_a_transaction_or_task_a_key_cannot_be_derived() -> None:
    with pytest.raises(TypeError, match="pass key="):
        pay(5, "1.00")


def test_arguments_that_are_not_json_need_an_explicit_key() -> None:
    with bind(), pytest.raises(TypeError, match="pass key="):
        pay(object(), "1.00")


def test_eager_task_is_keyed_by_its_task_name() -> None:
    with bind():
        assert effect_once.apply(args=["eager"]).get() == "eager"
        assert effect_once.apply(args=["eager"]).get() == "eager"
    assert effects("eager") == 1
    assert IdempotencyRecord.objects.get().operation == "tests.taskapp.idempotency_tasks.effect_once"


def test_block_with_an_explicit_key() -> None:
    for _ in range(2):
        with idempotent_block("notify", key="customer:9") as step:
            if not step.completed:
                Effect.objects.create(label="notify-9")
                step.result = "sent"
    assert step.completed
    assert step.result == "sent"
    assert effects("notify-9") == 1


def test_block_outside_a_task_needs_a_key() -> None:
    with pytest.raises(TypeError, match="explicit key"), idempotent_block("notify"):
        pass


def test_an_expired_lease_of_a_dead_attempt_is_taken_over() -> None:
    with bind():
        dead = store.claim(
            scope="task",
            operation="notify",
            client_key="customer:10",
            fingerprint=call_fingerprint(None, None),
            lease=60,
            ttl=3600,
            using="default",
        )
        IdempotencyRecord.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        with idempotent_block("notify", key="customer:10") as step:
            assert not step.completed
            assert step.claim.attempt == 2
            Effect.objects.create(label="notify-10")
    with pytest.raises(LeaseLost):
        dead.claim.complete(body=b"null")
    assert effects("notify-10") == 1
    assert IdempotencyRecord.objects.get().attempts == 2


class Holder:
    """Runs an idempotent block in another thread and keeps it open until released."""

    def __init__(self, key: str, lease: float = 60) -> None:
        self.inside = threading.Event()
        self.release = threading.Event()
        self.key = key
        self.lease = lease

    def run(self) -> Any:
        try:
            with idempotent_block("held", key=self.key, lease=self.lease) as step:
                Effect.objects.create(label=self.key, note="holder")
                step.result = "holder's result"
                self.inside.set()
                assert self.release.wait(30)
            return step.result
        finally:
            connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_waits_for_the_running_attempt_and_gets_its_result() -> None:
    holder = Holder("wait-key")
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(holder.run)
        assert holder.inside.wait(30)

        def duplicate() -> tuple[bool, Any]:
            try:
                with idempotent_block("held", key="wait-key", wait=30) as step:
                    if not step.completed:
                        Effect.objects.create(label="wait-key", note="duplicate")
                return step.completed, step.result
            finally:
                connections.close_all()

        second = pool.submit(duplicate)
        wait_until(lambda: IdempotencyRecord.objects.get().state == "in_progress", what="the holder's claim")
        assert not second.done()
        holder.release.set()
        assert first.result(timeout=30) == "holder's result"
        assert second.result(timeout=30) == (True, "holder's result")
    assert list(Effect.objects.filter(label="wait-key").values_list("note", flat=True)) == ["holder"]


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_gives_up_after_waiting() -> None:
    holder = Holder("busy-key")
    with ThreadPoolExecutor(1) as pool:
        pool.submit(holder.run)
        assert holder.inside.wait(30)
        try:
            with (
                pytest.raises(StillInFlight, match="busy-key"),
                idempotent_block("held", key="busy-key", wait=0.2),
            ):
                pass
        finally:
            holder.release.set()


@pytest.mark.django_db(transaction=True)
def test_a_stale_owner_cannot_complete_and_its_effect_rolls_back() -> None:
    holder = Holder("stale-key", lease=0.3)
    with ThreadPoolExecutor(1) as pool:
        stale = pool.submit(holder.run)
        assert holder.inside.wait(30)
        record = IdempotencyRecord.objects.get()
        wait_until(lambda: timezone.now() > record.lease_expires_at, what="the holder's lease to expire")
        with idempotent_block("held", key="stale-key") as step:
            assert step.claim.attempt == 2
            Effect.objects.create(label="stale-key", note="successor")
            step.result = "successor's result"
        holder.release.set()
        with pytest.raises(LeaseLost):
            stale.result(timeout=30)
    assert list(Effect.objects.filter(label="stale-key").values_list("note", flat=True)) == ["successor"]
    with idempotent_block("held", key="stale-key") as step:
        assert step.completed
        assert step.result == "successor's result"


@pytest.mark.django_db(transaction=True)
def test_a_skipped_duplicate_is_recorded_as_a_replay() -> None:
    # Transactional: the recorder may write from its own thread and connection.
    with override_settings(TRACING_APP={**app_settings.user_settings(), "TRACE_ENABLED": True}):
        with bind() as ctx:
            pay(11, "5.00")
            pay(11, "5.00")
        recorder.flush()
    event = TraceEvent.objects.get(kind="idempotent.replay")
    assert event.correlation_id == ctx.correlation_id
    assert event.name == f"{__name__}.pay"
    assert event.attributes["replay"] == 1
    assert event.attributes["first_correlation_id"] == ctx.correlation_id
