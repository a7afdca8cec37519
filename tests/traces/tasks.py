"""Tasks of the trace tests' checkout fan-out, run by a real worker (``--include tests.traces.tasks``)."""

from __future__ import annotations

import logging

from celery import Task

from tests.project.celery import app

logger = logging.getLogger("tests.traces.tasks")


class PaymentDeclinedError(Exception):
    pass


@app.task(bind=True, max_retries=3)
def reserve_stock(self: Task, order_id: str, note: str = "") -> str:
    if self.request.retries == 0:
        raise self.retry(countdown=0, exc=TimeoutError("inventory service timed out"))
    send_confirmation.delay(order_id=order_id)
    return "reserved"


@app.task
def send_confirmation(order_id: str) -> str:
    logger.warning("customer of order %s has no e-mail address; confirmation kept for the outbox", order_id)
    return "queued"


@app.task
def charge_card(order_id: str) -> None:
    raise PaymentDeclinedError(f"card declined for order {order_id}")
