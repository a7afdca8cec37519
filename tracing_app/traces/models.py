"""The trace store: one row per recorded event, one row per recorded transaction."""

from __future__ import annotations

from django.db import models


class Kind(models.TextChoices):
    REQUEST_STARTED = "request.started", "request started"
    REQUEST_FINISHED = "request.finished", "request finished"
    TASK_PUBLISHED = "task.published", "task published"
    TASK_STARTED = "task.started", "task started"
    TASK_RETRIED = "task.retried", "task retried"
    TASK_SUCCEEDED = "task.succeeded", "task succeeded"
    TASK_FAILED = "task.failed", "task failed"
    IDEMPOTENT_REPLAY = "idempotent.replay", "idempotent replay"
    MESSAGE_PUBLISHED = "message.published", "message published"
    MESSAGE_CONSUMED = "message.consumed", "message consumed"
    LOG = "log", "log record"
    ERROR = "error", "error"


class TraceEvent(models.Model):
    """Something one hop (a request, a task, a consumed message) did, in its transaction's causal order.

    ``sequence`` is the transaction's Lamport clock, so events order causally across hosts whose clocks
    disagree; ``timestamp`` is shown, never used for ordering. ``hop_id``/``causation_id`` give the tree.
    """

    correlation_id = models.CharField(max_length=128)
    hop_id = models.CharField(max_length=128)
    causation_id = models.CharField(max_length=128, blank=True, default="")
    sequence = models.BigIntegerField()
    # One of Kind's values; not a field choice, so a new kind needs no migration.
    kind = models.CharField(max_length=32)
    name = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=32, blank=True, default="")
    duration_ms = models.FloatField(null=True, blank=True)
    error = models.BooleanField(default=False)
    timestamp = models.DateTimeField()
    host = models.CharField(max_length=255, blank=True, default="")
    pid = models.PositiveIntegerField(null=True, blank=True)
    trace_id = models.CharField(max_length=32, blank=True, default="")
    span_id = models.CharField(max_length=16, blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "trace event"
        indexes = [
            # One transaction's events in causal order: the trace page and `manage.py trace`.
            models.Index(fields=["correlation_id", "sequence"], name="tracing_event_corr_seq"),
            # Search by a task or request ID.
            models.Index(fields=["hop_id"], name="tracing_event_hop"),
            # Purging by age.
            models.Index(fields=["timestamp"], name="tracing_event_timestamp"),
        ]
        # On PostgreSQL a GIN index on attributes (jsonb_path_ops) serves attribute search; it is created
        # by the migration, as other databases have no such index.

    def __str__(self) -> str:
        return f"{self.correlation_id} #{self.sequence} {self.kind} {self.name}".rstrip()


class Trace(models.Model):
    """One recorded transaction, so the admin pages through recent ones without grouping every event.

    Written once per correlation ID and process (duplicates are ignored); the figures shown in the list
    (status, duration, hops, errors) are aggregated from the page's events when it is shown.
    """

    correlation_id = models.CharField(max_length=128, primary_key=True)
    started_at = models.DateTimeField()

    class Meta:
        verbose_name = "trace"
        indexes = [models.Index(fields=["started_at", "correlation_id"], name="tracing_trace_started")]

    def __str__(self) -> str:
        return self.correlation_id
