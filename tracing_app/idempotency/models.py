"""The idempotency record: one row per (scope, operation, client key), claimed through its primary key."""

from __future__ import annotations

from django.db import models


class IdempotencyRecord(models.Model):
    """An attempt at an operation and, once it completed, the outcome a repeat gets instead of a rerun."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress", "in progress"
        COMPLETED = "completed", "completed"

    # The primary key is the deterministic key itself: claiming is one insert into its unique index.
    key = models.CharField(
        primary_key=True, max_length=26, help_text="derive_id(scope, operation, client key)"
    )
    scope = models.TextField(help_text="Who the client is: user, tenant, or anonymous client address.")
    operation = models.CharField(max_length=255, help_text='"http", a view\'s own name, or a task name.')
    client_key = models.TextField(help_text="The Idempotency-Key the client sent, or the task's key.")
    fingerprint = models.CharField(
        max_length=26, help_text="Hash of method, path and body (or task arguments)."
    )
    method = models.CharField(max_length=16, blank=True)
    path = models.TextField(blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    owner = models.CharField(max_length=26, help_text="Token of the attempt holding the lease.")
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Until then no other attempt may take the key over."
    )
    attempts = models.PositiveIntegerField(default=1, help_text="1, plus one per takeover of a dead attempt.")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=list, blank=True)
    response_body = models.BinaryField(
        null=True, blank=True, help_text="Empty (null) when the body was too large or streamed."
    )
    response_size = models.PositiveIntegerField(null=True, blank=True, help_text="The original body's size.")
    correlation_id = models.CharField(max_length=128, blank=True, db_index=True)
    replay_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "idempotency record"

    def __str__(self) -> str:
        return f"{self.operation} {self.client_key[:40]} ({self.state})"
