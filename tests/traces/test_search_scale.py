"""Search at scale: on PostgreSQL free text and attributes are answered from their indexes, and every
search finds the transactions a plain scan of the events finds, newest first, a page at a time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from tracing_app.traces import queries
from tracing_app.traces.models import Trace, TraceEvent

# PostgreSQL: its free-text search; the SQLite path runs again in test_store_on_sqlite.py.
pytestmark = [pytest.mark.services, pytest.mark.django_db, pytest.mark.usefixtures("tracing")]

PAGE = 5
# Where free text is looked for: the event's name and these attributes.
TEXT_KEYS = ("message", "exception", "exception_message", "args")


@pytest.fixture
def events(settings: Any) -> list[TraceEvent]:
    """Twelve transactions (more than two pages), several matching events in some."""
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_ADMIN_PAGE_SIZE": PAGE}
    start = timezone.now() - timedelta(hours=1)
    rows = []
    for t in range(12):
        cid = f"TX{t:02}"
        names = ["checkout", "orders.charge", "orders.email"]
        attributes: list[dict[str, Any]] = [{"order_id": t}, {}, {"message": f"mail {t} queued"}]
        if t % 4 == 0:
            names.append("orders.charge")
            attributes.append({"exception": "PaymentUnavailable", "exception_message": "gateway down"})
        if t % 5 == 0:
            names.append("log")
            attributes.append({"message": "Retrying charge_payment in 2 s"})
        for n, (name, attrs) in enumerate(zip(names, attributes, strict=True), start=1):
            rows.append(
                TraceEvent(
                    correlation_id=cid,
                    hop_id=f"{cid}H{n}",
                    sequence=n,
                    kind="log",
                    name=name,
                    timestamp=start + timedelta(seconds=t, milliseconds=n),
                    attributes=attrs,
                )
            )
        Trace.objects.create(correlation_id=cid, started_at=start + timedelta(seconds=t))
    # Interleaved, so "newest" means the latest matching event, not the transaction's start.
    rows.sort(key=lambda row: (row.sequence, -int(row.correlation_id[2:])))
    return TraceEvent.objects.bulk_create(rows)


def _scanned(text: str) -> list[str]:
    """What a plain scan finds: transactions by their newest matching event, a page of them."""
    newest: dict[str, int] = {}
    for event in TraceEvent.objects.order_by("id"):
        searched = " ".join([event.name, *(str(event.attributes.get(key, "")) for key in TEXT_KEYS)])
        if text.lower() in searched.lower():
            newest[event.correlation_id] = event.id
    return sorted(newest, key=newest.__getitem__, reverse=True)[:PAGE]


def _found(query: str) -> list[str]:
    return [row.correlation_id for row in queries.search(query)]


@pytest.mark.parametrize(
    "text",
    [
        "orders.charge",
        "ORDERS.CHARGE",
        "PaymentUnavailable",
        "gateway down",
        "charge_payment in 2",
        "mail 7",
        # Across the name and an attribute, which PostgreSQL searches joined by a space.
        pytest.param(
            "orders.email mail 3",
            marks=pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite searches fields alone"),
        ),
    ],
)
def test_free_text_finds_what_a_plain_scan_finds(events, text):
    assert _found(text) == _scanned(text)
    assert _found(text)


@pytest.mark.parametrize("text", ["no such words", "Retrying  charge_payment", "charge_payment_"])
def test_free_text_matching_nothing_finds_nothing(events, text):
    assert _found(text) == _scanned(text) == []


def test_attribute_and_id_searches_find_their_transaction(events):
    assert _found("order_id=7") == ["TX07"]
    assert _found("tx03h2") == ["TX03"]
    assert _found("tx11") == ["TX11"]


def _plan(sql: str, params: Any) -> str:
    with connection.cursor() as cursor:
        # Only bitmap scans left: the plan says which index can answer the condition at all.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the indexes exist on PostgreSQL only")
@pytest.mark.parametrize("text", ["PaymentUnavailable", "Retrying charge_payment"])
def test_free_text_is_answered_from_the_name_and_attribute_trigram_indexes(events, text):
    plan = _plan(*queries.text_events(text).query.sql_with_params())
    assert "tracing_event_name_text" in plan
    assert "tracing_event_attribute_text" in plan


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the indexes exist on PostgreSQL only")
def test_attribute_search_is_answered_from_the_attributes_index(events):
    condition = queries.attribute_condition("order_id", "7")
    sql, params = TraceEvent.objects.filter(condition).query.sql_with_params()
    assert "tracing_event_attributes" in _plan(sql, params)
