"""Idempotency records in the Django admin: read-only, searchable by key and correlation ID."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from tracing_app.idempotency.models import IdempotencyRecord
from tracing_app.ids import minted_at

_PREVIEW_CHARS = 2000


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = (
        "client_key",
        "operation",
        "state",
        "response_status",
        "replay_count",
        "attempts",
        "correlation_id",
        "created_at",
        "expires_at",
    )
    list_filter = ("state", "operation")
    # Exact matches: they use the primary key and the correlation_id index.
    search_fields = ("=key", "=client_key", "=correlation_id")
    # expires_at is indexed and follows creation order (created_at + TTL), so the list needs no sort.
    ordering = ("-expires_at",)
    show_full_result_count = False
    fields = (
        "key",
        "client_key",
        "scope",
        "operation",
        "method",
        "path",
        "fingerprint",
        "state",
        "owner",
        "lease_expires_at",
        "attempts",
        "correlation_id",
        "correlation_id_minted",
        "replay_count",
        "created_at",
        "completed_at",
        "expires_at",
        "response_status",
        "response_headers",
        "response_size",
        "response_preview",
    )
    readonly_fields = fields

    @admin.display(description="correlation ID minted")
    def correlation_id_minted(self, record: IdempotencyRecord) -> str:
        """When the first request's ID was minted (read from the ULID, to the millisecond), or empty for
        other formats."""
        minted = minted_at(record.correlation_id)
        return minted.isoformat(timespec="milliseconds") if minted else self.get_empty_value_display()

    @admin.display(description="response body")
    def response_preview(self, record: IdempotencyRecord) -> str:
        if record.response_body is None:
            return "(not stored)"
        text = bytes(record.response_body).decode("utf-8", errors="replace")
        return text if len(text) <= _PREVIEW_CHARS else f"{text[:_PREVIEW_CHARS]}... ({len(text)} chars)"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: IdempotencyRecord | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: IdempotencyRecord | None = None) -> bool:
        return False
