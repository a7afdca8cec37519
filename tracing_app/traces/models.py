"""The trace store: one row per recorded event, one row per recorded transaction."""

from __future__ import annotations

from django.db import models


class Kind(models.TextChoices):
    REQUEST_STARTED = "request.started", "request started"
    REQUEST_FINISHED = "request.finished", "request finished"
    TASK_QUEUED = "task.queued", "task queued in the outbox"
    TASK_PUBLISHED = "task.published", "task published"
    TASK_PUBLISH_DEFERRED = "task.publish_deferred", "task publish deferred"
    TASK_PUBLISH_FAILED = "task.publish_failed", "task publish failed"
    TASK_REVOKED = "task.revoked", "task revoked"
    TRANSACTION_RESUMED = "transaction.resumed", "transaction resumed"
    TASK_STARTED = "task.started", "task started"
    TASK_RETRIED = "task.retried", "task retried"
    TASK_SUCCEEDED = "task.succeeded", "task succeeded"
    TASK_FAILED = "task.failed", "task failed"
    IDEMPOTENT_REPLAY = "idempotent.replay", "idempotent replay"
    ANNOTATION = "annotation", "annotation"
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
    """One recorded transaction, with its headline figures, so the list pages and filters on indexed
    columns without grouping events.

    The recorder merges the figures of every batch it writes (:mod:`tracing_app.traces.summary`), so
    they cover every hop of the transaction: outcome, first-to-last-event duration, counts.
    """

    correlation_id = models.CharField(max_length=128, primary_key=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    # One of summary.OUTCOMES; "" for a row written before the figures existed.
    outcome = models.CharField(max_length=16, blank=True, default="")
    entry_point = models.CharField(max_length=255, blank=True, default="")
    entry_hop = models.CharField(max_length=128, blank=True, default="")
    entry_sequence = models.BigIntegerField(null=True, blank=True)
    entry_method = models.CharField(max_length=16, blank=True, default="")
    entry_status = models.CharField(max_length=32, blank=True, default="")
    # A single safe-method request (a poll, a page view): hidden from the list unless asked for.
    single_read = models.BooleanField(default=False)
    events = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    tasks = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    compensations = models.PositiveIntegerField(default=0)
    # Starts minus ends, and tasks published minus started: above zero while work is under way.
    open_hops = models.IntegerField(default=0)
    queued = models.IntegerField(default=0)

    class Meta:
        verbose_name = "trace"
        indexes = [
            models.Index(fields=["started_at", "correlation_id"], name="tracing_trace_started"),
            # The list's default view (polls hidden) and each filter, newest first.
            models.Index(fields=["single_read", "started_at"], name="tracing_trace_reads"),
            models.Index(fields=["outcome", "started_at"], name="tracing_trace_outcome"),
            models.Index(fields=["entry_point", "started_at"], name="tracing_trace_entry"),
            models.Index(fields=["duration_ms"], name="tracing_trace_duration"),
        ]

    def __str__(self) -> str:
        return self.correlation_id


class DroppedEvents(models.Model):
    """Trace events one process recorded but could not keep (its buffer was full), counted per process,
    so the admin can show the total across every host and worker."""

    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    # Together with host and pid: one process, even after its pid is reused.
    process_started = models.DateTimeField()
    dropped = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = "dropped trace events"
        verbose_name_plural = "dropped trace events"
        constraints = [
            models.UniqueConstraint(fields=["host", "pid", "process_started"], name="tracing_drops_process")
        ]

    def __str__(self) -> str:
        return f"{self.host} pid {self.pid}: {self.dropped} dropped"
