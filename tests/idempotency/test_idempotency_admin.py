"""The read-only admin for idempotency records."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from tracing_app.idempotency.models import IdempotencyRecord
from tracing_app.ids import minted_at, new_id

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/tracing_app/idempotencyrecord/"


def make(client_key: str, correlation_id: str, body: bytes | None = b"{}") -> IdempotencyRecord:
    now = timezone.now()
    return IdempotencyRecord.objects.create(
        key=f"{client_key:0>26}"[:26],
        scope="user:1",
        operation="http",
        client_key=client_key,
        fingerprint="f",
        owner="o",
        state="completed",
        response_status=201,
        response_body=body,
        correlation_id=correlation_id,
        created_at=now,
        expires_at=now + timedelta(hours=24),
    )


@pytest.fixture
def staff(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("support", password="pw"))
    return client


def test_search_by_client_key_and_correlation_id(staff: Client) -> None:
    make("order-1", "01CORRELATIONONE0000000000")
    make("order-2", "01CORRELATIONTWO0000000000")
    by_key = staff.get(CHANGELIST, {"q": "order-1"}).content.decode()
    assert "01CORRELATIONONE0000000000" in by_key
    assert "01CORRELATIONTWO0000000000" not in by_key
    by_id = staff.get(CHANGELIST, {"q": "01CORRELATIONTWO0000000000"}).content.decode()
    assert "order-2" in by_id
    assert "order-1" not in by_id


def test_records_are_read_only_and_escaped(staff: Client) -> None:
    record = make(
        "<script>alert(1)</script>", "01CORRELATIONONE0000000000", b'{"x": "<img src=x onerror=1>"}'
    )
    page = staff.get(f"{CHANGELIST}{record.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=1&gt;" in html
    assert 'name="_save"' not in html
    assert staff.get(f"{CHANGELIST}add/").status_code == 403
    assert staff.post(f"{CHANGELIST}{record.pk}/delete/").status_code == 403
    assert IdempotencyRecord.objects.count() == 1


def test_anonymous_and_non_staff_see_nothing(client: Client) -> None:
    make("order-1", "01CORRELATIONONE0000000000")
    assert client.get(CHANGELIST).status_code == 302
    client.force_login(User.objects.create_user("customer", password="pw"))
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert b"order-1" not in response.content


def test_the_mint_time_of_the_first_requests_id_is_shown(staff: Client) -> None:
    def shown(record: IdempotencyRecord) -> str:
        page = staff.get(f"{CHANGELIST}{record.pk}/change/").content.decode()
        field = re.search(r'field-correlation_id_minted.*?<div class="readonly">(.*?)</div>', page, re.S)
        assert field is not None
        return field.group(1).strip()

    minted = make("order-minted", new_id())
    assert shown(minted) == minted_at(minted.correlation_id).isoformat(timespec="milliseconds")
    assert shown(make("order-token", "upstream-request-7")) == "-"
