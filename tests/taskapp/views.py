"""One request that starts every shape of Celery work, so a worker's log can prove the ID reached each."""

from __future__ import annotations

from celery import chain, chord, group
from django.db import transaction
from django.http import HttpRequest, JsonResponse

from tests.project.celery import app
from tests.taskapp import tasks
from tests.taskapp.raw import raw_queue
from tracing_app import messaging
from tracing_app.context import current


def start_everything(request: HttpRequest) -> JsonResponse:
    run = request.GET["run"]
    sent: dict[str, str] = {}
    sent["plain"] = tasks.record.delay(f"{run}:plain").id
    sent["task-logger"] = tasks.record_task_logger.delay(f"{run}:task-logger").id
    sent["headers"] = tasks.record.apply_async((f"{run}:headers",), headers={"x_tenant": "acme"}).id
    sent["send-task"] = app.send_task(tasks.record.name, args=(f"{run}:send-task",)).id
    with transaction.atomic():
        tasks.record.delay_on_commit(f"{run}:on-commit")
    sent["retry"] = tasks.flaky.delay(f"{run}:retry", 2).id
    sent["autoretry"] = tasks.auto_flaky.delay(f"{run}:autoretry", 2).id
    sent["chain"] = (
        chain(
            tasks.record.si(f"{run}:chain-1"),
            tasks.record.si(f"{run}:chain-2"),
            tasks.record.si(f"{run}:chain-3"),
        )
        .delay()
        .id
    )
    sent["group"] = group(tasks.record.si(f"{run}:group-{index}") for index in range(3)).delay().id
    sent["chord"] = (
        chord(
            [tasks.record.si(f"{run}:chord-{index}") for index in range(3)],
            tasks.collect.s(f"{run}:chord-callback"),
        )
        .delay()
        .id
    )
    sent["parent"] = tasks.parent.delay(f"{run}:parent").id
    sent["failing"] = tasks.failing.delay(f"{run}:failing").id
    with app.producer_or_acquire() as producer:
        queue = raw_queue(request.GET["raw_queue"])
        messaging.publish(producer, {"label": f"{run}:raw"}, routing_key=queue.name, declare=[queue])
    ctx = current()
    return JsonResponse({"correlation_id": ctx.correlation_id, "hop_id": ctx.hop_id, "sent": sent})
