"""The checkout under infrastructure faults, on PostgreSQL + RabbitMQ with real ``celery worker`` and
``celery beat`` processes: the broker or the database cut for seconds, worker processes killed.

Outages go through a TCP proxy (tests/support/proxy.py) between the processes under test and the shared
services, which are never stopped. Each scenario ends by reading the database: every order ends
(confirmed, or failed with its stock back and no money taken), one gateway charge per confirmed order,
nothing left paid without a confirmation, and the tasks of every order ran under its correlation ID.

The reconciler runs on beat every ``RECONCILE_INTERVAL`` seconds and resumes orders that did not move for
``RECONCILE_AFTER`` seconds: short here, so the scenarios fit the suite's time.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone

from checkout_demo import saga
from checkout_demo.catalog import seed_products
from checkout_demo.customers import ensure_customers
from checkout_demo.models import GatewayCall, GatewayCharge, Order, Product
from tests.demo.conftest import client_of, make_order
from tests.support.proxy import tcp_proxy
from tests.support.waiting import wait_until
from tests.support.worker import CeleryProcess, database_url, run_beat, run_worker, unique_queue
from tracing_app.outbox.models import OutboxMessage
from tracing_app.traces.models import TraceEvent

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

RECONCILE_AFTER = 8
RECONCILE_INTERVAL = 2
SETTLE_TIMEOUT = 180
FAULT_ENV = {
    "DEMO_RECONCILE_AFTER": str(RECONCILE_AFTER),
    "DEMO_RECONCILE_INTERVAL": str(RECONCILE_INTERVAL),
    "OUTBOX_RELAY_DELAY": "2",
    "TRACE_EVENTS": "1",
    "TRACE_FLUSH_INTERVAL": "0.2",
}
# The demo customers' API tokens, username -> key (filled by the catalog fixture).
TOKENS: dict[str, str] = {}
SAGA_TASKS = {"checkout_demo.reserve_stock", "checkout_demo.charge_payment", "checkout_demo.confirm_order"}


@pytest.fixture
def catalog(django_db_setup: Any, tmp_path: Path) -> dict[str, int]:
    """The products' stock before the checkouts; the demo's customers exist (orders are ada's)."""
    seed_products()
    TOKENS.update(ensure_customers(tmp_path))
    return dict(Product.objects.values_list("sku", "stock"))


@pytest.fixture
def web_recording(settings: Any) -> None:
    """This process (the web side) records its events and leaves the outbox to the relay as soon."""
    settings.TRACING_APP = {
        **settings.TRACING_APP,
        "OUTBOX_RELAY_DELAY": 2.0,
        "TRACE_ENABLED": True,
        "TRACE_FLUSH_INTERVAL": 0.2,
    }


@contextmanager
def saga_processes(
    broker_url: str, *, worker_env: dict[str, str] | None = None, concurrency: int = 2
) -> Iterator[tuple[CeleryProcess, CeleryProcess]]:
    """A worker and beat on one queue; this process publishes to the same broker URL and queue."""
    queue = unique_queue("tracing-faults")
    with ExitStack() as stack:
        beat = stack.enter_context(
            run_beat(broker_url, queue=queue, app_module="settings.celery", env=FAULT_ENV)
        )
        worker = stack.enter_context(
            run_worker(
                broker_url, queue=queue, concurrency=concurrency, env={**FAULT_ENV, **(worker_env or {})}
            )
        )
        yield worker, beat


def new_orders(count: int, method: str = "pm_card_ok") -> list[Order]:
    return [make_order(("MUG-01", 1), ("TEE-01", 1), method=method) for _ in range(count)]


def check_out(orders: Sequence[Order], method: str = "pm_card_ok") -> list[int]:
    """POST each order's checkout from 8 client threads at once; the response statuses, in order."""

    def post(order: Order) -> int:
        try:
            response = client_of(TOKENS["ada"]).post(
                f"/api/orders/{order.pk}/checkout/",
                {"payment_method": method},
                format="json",
                HTTP_X_CORRELATION_ID=order.correlation_id,
            )
            return response.status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(post, orders))


def settled(orders: Sequence[Order]) -> dict[str, int]:
    """Wait until every order is confirmed or failed; their statuses counted."""

    def ended() -> bool:
        return (
            not Order.objects.filter(pk__in=[o.pk for o in orders])
            .exclude(status__in=Order.TERMINAL)
            .exists()
        )

    wait_until(ended, timeout=SETTLE_TIMEOUT, interval=0.5, what="every order to end")
    statuses: dict[str, int] = {}
    for status in Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("status", flat=True):
        statuses[status] = statuses.get(status, 0) + 1
    return statuses


def assert_money_and_stock_right(orders: Sequence[Order], stock_before: dict[str, int]) -> None:
    confirmed = 0
    for order in Order.objects.filter(pk__in=[o.pk for o in orders]):
        charges = GatewayCharge.objects.filter(reference=f"order-{order.pk}", status="succeeded").count()
        if order.status == Order.Status.CONFIRMED:
            confirmed += 1
            assert charges == 1, f"order {order.pk} confirmed with {charges} charges"
        else:
            assert order.status == Order.Status.FAILED
            assert charges == 0, f"order {order.pk} failed with {charges} charges left"
    stock = dict(Product.objects.values_list("sku", "stock"))
    assert stock["MUG-01"] == stock_before["MUG-01"] - confirmed
    assert stock["TEE-01"] == stock_before["TEE-01"] - confirmed
    assert not OutboxMessage.objects.exists(), "every queued message was sent"


def assert_tasks_ran_in_their_orders(workers: Sequence[CeleryProcess], orders: Sequence[Order]) -> None:
    by_correlation = {o.correlation_id for o in orders}
    records = [record for worker in workers for record in worker.records()]
    for order in orders:
        ran = {r.get("task_name") for r in records if r.get("correlation_id") == order.correlation_id}
        assert ran >= SAGA_TASKS or Order.objects.get(pk=order.pk).status == Order.Status.FAILED, (
            order.pk,
            ran,
        )
    saga_lines = [r for r in records if r.get("task_name") in SAGA_TASKS]
    assert {r["correlation_id"] for r in saga_lines} <= by_correlation


@pytest.mark.usefixtures("web_recording")
def test_broker_cut_for_20_seconds(catalog: dict[str, int], rabbitmq_url: str) -> None:
    before, during = new_orders(25), new_orders(25)
    with tcp_proxy(5672) as broker, saga_processes(broker.url_for(rabbitmq_url)) as (worker, _):
        assert check_out(before) == [202] * len(before)
        broker.cut()
        # Accepted while the broker is away: the chain waits in the outbox, committed with the order.
        assert check_out(during) == [202] * len(during)
        assert OutboxMessage.objects.count() >= 1
        threading.Event().wait(20)  # the outage itself, not a wait for anything
        broker.restore()
        statuses = settled(before + during)
        assert statuses == {"confirmed": 50}
        assert_money_and_stock_right(before + during, catalog)
        assert_tasks_ran_in_their_orders([worker], before + during)


@pytest.mark.usefixtures("web_recording")
def test_database_cut_for_10_seconds(catalog: dict[str, int], rabbitmq_url: str) -> None:
    orders = new_orders(40)
    with tcp_proxy(5432) as database:
        proxied = {"DATABASE_URL": database.url_for(database_url())}
        with saga_processes(rabbitmq_url, worker_env=proxied) as (worker, _):
            first = check_out(orders[:20])
            database.cut()
            rest = check_out(orders[20:])
            threading.Event().wait(10)  # the outage
            database.restore()
            assert first + rest == [202] * len(orders)
            statuses = settled(orders)
            assert set(statuses) <= {"confirmed", "failed"}
            assert_money_and_stock_right(orders, catalog)
            assert not Order.objects.filter(status=Order.Status.PAID).exists()
            assert_tasks_ran_in_their_orders([worker], orders)
            retried = [
                r
                for r in worker.records()
                if r["logger"] == "celery.app.trace"
                and "retry" in r["message"]
                and "OperationalError" in r["message"]
            ]
            assert retried, "the cut reached running tasks, which retried"
            # Events the worker could not write during the cut were kept and written afterwards.
            wait_until(
                lambda: all(confirmed_in_trace(order) for order in orders), timeout=30, what="complete traces"
            )


def confirmed_in_trace(order: Order) -> bool:
    return TraceEvent.objects.filter(
        correlation_id=order.correlation_id, kind="task.succeeded", name="checkout_demo.confirm_order"
    ).exists()


@pytest.mark.usefixtures("web_recording")
def test_pool_processes_then_the_worker_killed(catalog: dict[str, int], rabbitmq_url: str) -> None:
    orders = new_orders(30, method="pm_card_slow")
    queue = unique_queue("tracing-kill")
    with run_beat(rabbitmq_url, queue=queue, app_module="settings.celery", env=FAULT_ENV):
        with run_worker(rabbitmq_url, queue=queue, concurrency=2, env=FAULT_ENV) as first:
            assert check_out(orders) == [202] * len(orders)
            first.wait_for(lambda r: "Charged" in r["message"], 60)
            for child in children(first.pid):
                os.kill(child, signal.SIGKILL)
            lost = first.wait_for(lambda r: "WorkerLostError" in r.get("exception", ""), 60)
            # The worker-lost line is in the order's transaction, and so is the error in its trace.
            lost_order = Order.objects.get(correlation_id=lost["correlation_id"])
            assert lost["task_id"] not in ("-", None)
            wait_until(
                lambda: TraceEvent.objects.filter(
                    correlation_id=lost_order.correlation_id, hop_id=lost["task_id"], error=True
                ).exists(),
                timeout=30,
                what="the lost task's error event",
            )
            first.wait_for(lambda r: "Charged" in r["message"] and r["process"] != first.pid, 60)
            first.kill(signal.SIGKILL)
        with run_worker(rabbitmq_url, queue=queue, concurrency=2, env=FAULT_ENV) as second:
            statuses = settled(orders)
            assert statuses == {"confirmed": 30}
            assert_money_and_stock_right(orders, catalog)
            assert_tasks_ran_in_their_orders([first, second], orders)


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return [int(child) for child in listing.read().split()]


@pytest.mark.usefixtures("web_recording")
def test_100_concurrent_checkouts_without_faults(catalog: dict[str, int], rabbitmq_url: str) -> None:
    orders = new_orders(100)
    with saga_processes(rabbitmq_url) as (worker, _):
        assert check_out(orders) == [202] * len(orders)
        assert settled(orders) == {"confirmed": 100}
        assert_money_and_stock_right(orders, catalog)
        assert_tasks_ran_in_their_orders([worker], orders)
    for order in orders[:5]:
        kinds = set(
            TraceEvent.objects.filter(correlation_id=order.correlation_id).values_list("kind", flat=True)
        )
        assert {"task.queued", "task.published", "task.started", "task.succeeded"} <= kinds


def left_half_way(order: Order, steps: int) -> Order:
    """Run the saga's first ``steps`` steps in this process, as a worker that died after them would have."""
    saga.start_checkout(order.pk, "pm_card_ok", publish=lambda _: None)
    saga.reserve_stock(order.pk)
    if steps > 1:
        payment = saga.prepare_payment(order.pk)
        saga.record_charge(payment, saga.call_gateway(payment))
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    return Order.objects.get(pk=order.pk)


@pytest.mark.usefixtures("web_recording")
def test_orders_left_half_way_are_resumed_by_the_reconciler_on_beat(
    catalog: dict[str, int], rabbitmq_url: str
) -> None:
    reserved = left_half_way(new_orders(1)[0], steps=1)
    paid = left_half_way(new_orders(1)[0], steps=2)
    assert (reserved.status, paid.status) == (Order.Status.RESERVED, Order.Status.PAID)
    with saga_processes(rabbitmq_url) as (worker, _):
        assert settled([reserved, paid]) == {"confirmed": 2}
        assert_money_and_stock_right([reserved, paid], catalog)
        # The paid order was confirmed without another call to the gateway; the reserved one charged once.
        assert GatewayCall.objects.filter(reference=f"order-{paid.pk}").count() == 1
        assert GatewayCall.objects.filter(reference=f"order-{reserved.pk}").count() == 1
        first_step = {reserved.pk: "checkout_demo.charge_payment", paid.pk: "checkout_demo.confirm_order"}
        for order in (reserved, paid):
            wait_until(
                lambda order=order: confirmed_in_trace(order), timeout=30, what="the resumed order's trace"
            )
            (resumed,) = TraceEvent.objects.filter(
                correlation_id=order.correlation_id, kind="transaction.resumed"
            )
            assert resumed.attributes == {"order_id": order.pk}
            # The resumption is the cause of the first step it published.
            line = worker.wait_for(
                lambda r, order=order: (
                    r.get("task_name") == first_step[order.pk] and r["correlation_id"] == order.correlation_id
                ),
                30,
            )
            assert line["causation_id"] == resumed.hop_id
