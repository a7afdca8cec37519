"""Outbox messages in the Django admin: what waits for the broker, since when, and why."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from tracing_app.outbox.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ("task_name", "task_id", "correlation_id", "created_at", "available_at", "attempts")
    search_fields = ("=task_id", "=correlation_id", "task_name")
    ordering = ("available_at", "id")
    readonly_fields = [field.name for field in OutboxMessage._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OutboxMessage | None = None) -> bool:
        return False
