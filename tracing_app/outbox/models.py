"""The outbox table: task messages committed with the data they belong to, waiting for the broker."""

from __future__ import annotations

from django.db import models


class OutboxMessage(models.Model):
    """One task (or canvas: chain, group, chord) to publish once its transaction has committed.

    ``signature`` is the frozen Celery signature (task IDs fixed when it was queued, so every publish of
    this row sends the same IDs); ``context`` is the publisher's transaction (correlation ID, hop,
    clock, sampling, ``traceparent``), restored while the row is published. A row is deleted once the
    broker accepted its message.
    """

    task_id = models.CharField(max_length=64)
    task_name = models.CharField(max_length=255)
    signature = models.JSONField()
    context = models.JSONField(default=dict)
    correlation_id = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField()
    # The relay takes a row from this time on: the committing process publishes it first, the relay
    # only when that did not happen (a broker outage, a crash between commit and publish).
    available_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = "outbox message"
        indexes = [models.Index(fields=["available_at", "id"], name="tracing_outbox_available")]

    def __str__(self) -> str:
        return f"{self.task_name} [{self.task_id}]"
