"""The admin's Traces pages: who sees them, what they show, and that every value is escaped."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tracing_app.context import bind
from tracing_app.idempotency.models import IdempotencyRecord
from tracing_app.traces import recorder
from tracing_app.traces.recorder import record

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.traces.urls"),
    pytest.mark.usefixtures("tracing"),
]

LIST = "/admin/tracing_app/trace/"
XSS = "<script>alert('xss')</script>"
ESCAPED = "&lt;script&gt;alert(&#x27;xss&#x27;)&lt;/script&gt;"


def detail(correlation_id: str) -> str:
    return reverse("admin:tracing_app_trace_detail", args=[correlation_id])


def fan_out(*, order_id: object = 42, note: str = "") -> str:
    """A request that published two tasks: one retried and succeeded, one failed."""
    with bind(origin="http") as ctx:
        record("request.started", attributes={"method": "POST", "path": "/checkout/"})
        record("task.published", name="reserve_stock", attributes={"task_id": "task-reserve"})
        record("task.published", name="charge_card", attributes={"task_id": "task-charge"})
        record("request.finished", name="checkout", status="202", duration_ms=18.0)
        request_hop, sequence = ctx.hop_id, ctx.sequence
    for task_id, name in (("task-reserve", "reserve_stock"), ("task-charge", "charge_card")):
        with bind(ctx.correlation_id, causation_id=request_hop) as task_ctx:
            task_ctx.hop_id, task_ctx.sequence = task_id, sequence
            record("task.started", name=name, attributes={"kwargs": {"order_id": order_id, "note": note}})
            if name == "reserve_stock":
                record("task.retried", name=name, status="RETRY", attributes={"reason": "timeout"})
                record("task.started", name=name, attributes={"retries": 1})
                record("task.succeeded", name=name, status="SUCCESS", duration_ms=4.0)
            else:
                record(
                    "task.failed",
                    name=name,
                    status="FAILURE",
                    error=True,
                    attributes={"exception": "app.PaymentDeclinedError", "message": "card declined"},
                )
    recorder.flush()
    return ctx.correlation_id


# -- who sees it ----------------------------------------------------------------------------------------


def test_anonymous_users_are_sent_to_the_login_page_and_see_nothing(store):
    cid = store()
    for url in (LIST, detail(cid), f"{LIST}?q={cid}"):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
        assert cid not in response.content.decode()


def test_users_who_are_not_staff_see_nothing(store, make_user):
    cid = store()
    client = Client()
    client.force_login(make_user("customer", staff=False))
    for url in (LIST, detail(cid)):
        response = client.get(url)
        assert response.status_code == 302
        assert cid not in response.content.decode()


def test_staff_without_the_view_permission_are_refused(store, make_user):
    cid = store()
    client = Client()
    client.force_login(make_user("clerk", staff=True))
    for url in (LIST, detail(cid)):
        response = client.get(url)
        assert response.status_code == 403
        assert cid not in response.content.decode()
    assert LIST not in client.get("/admin/").content.decode()


def test_the_view_permission_shows_traces_in_the_admin_index(viewer_client):
    page = viewer_client.get("/admin/").content.decode()
    assert f'href="{LIST}"' in page
    assert ">Traces<" in page


def test_nothing_can_be_added_changed_or_deleted(viewer_client, store, make_user):
    cid = store()
    superuser = Client()
    superuser.force_login(make_user("root", staff=True, superuser=True))
    assert superuser.get(f"{LIST}add/").status_code == 404
    assert superuser.post(detail(cid)).status_code == 200
    page = superuser.get(LIST).content.decode()
    assert f'href="{LIST}add/"' not in page and "delete" not in page.lower().split('<div id="content"')[1]


# -- the list -------------------------------------------------------------------------------------------


def test_the_list_shows_recent_transactions_with_their_figures(
    viewer_client, store, django_assert_max_num_queries
):
    quiet = store()
    failing = fan_out()
    with django_assert_max_num_queries(12):
        response = viewer_client.get(LIST)
    page = response.content.decode()
    assert page.index(failing) < page.index(quiet)
    row = page[page.index(f'data-correlation-id="{failing}"') :].split("</tr>")[0]
    # The headline is the whole transaction's: failed (a task failed), not the request's 202.
    assert 'data-outcome="failed"' in row and "checkout" in row
    numbers = re.findall(r'<td class="tr-num" data-label="[a-z]+">(?:<span[^>]*>)?(\d+)<', row)
    assert numbers == ["1", "2", "1", "1"]  # requests, tasks, retries, errors


def test_the_list_costs_the_same_queries_for_many_transactions(
    viewer_client, store, django_assert_max_num_queries
):
    for _ in range(30):
        store()
    with django_assert_max_num_queries(12):
        assert viewer_client.get(LIST).status_code == 200


def test_the_list_pages_from_newest_to_oldest(viewer_client, store, settings):
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_ADMIN_PAGE_SIZE": 2}
    ids = [store() for _ in range(5)]
    seen: list[str] = []
    url = LIST
    for _ in range(5):
        response = viewer_client.get(url)
        seen += [s.correlation_id for s, _ in response.context["summaries"]]
        if not response.context["next_cursor"]:
            break
        url = f"{LIST}?before={quote(response.context['next_cursor'])}"
    assert seen == ids[::-1]


def test_the_errors_tab_lists_only_transactions_with_errors(viewer_client, store):
    quiet = store()
    failing = fan_out()
    page = viewer_client.get(f"{LIST}?errors=1").content.decode()
    assert failing in page and quiet not in page


def test_searching_an_exact_correlation_id_opens_its_trace(viewer_client, store):
    cid = store()
    response = viewer_client.get(LIST, {"q": f"  {cid} "})
    assert response.status_code == 302
    assert response["Location"] == detail(cid)


def test_searching_a_task_id_finds_its_transaction(viewer_client):
    cid = fan_out()
    page = viewer_client.get(LIST, {"q": "task-charge"}).content.decode()
    assert f'data-correlation-id="{cid}"' in page


@pytest.mark.parametrize("query", ["order_id=ord-981", "order_id = ord-981"])
def test_searching_an_attribute_value_finds_the_transaction(viewer_client, query):
    cid = fan_out(order_id="ord-981")
    other = fan_out(order_id="ord-982")
    page = viewer_client.get(LIST, {"q": query}).content.decode()
    assert cid in page and other not in page


def test_numbers_are_found_whether_stored_as_numbers_or_text(viewer_client, store):
    as_number = fan_out(order_id=1234)
    as_text = store(order_id="1234")
    page = viewer_client.get(LIST, {"q": "order_id=1234"}).content.decode()
    assert as_number in page and as_text in page


def test_a_search_with_no_match_says_so(viewer_client):
    page = viewer_client.get(LIST, {"q": "order_id=nope"}).content.decode()
    assert "Nothing matches" in page


# -- one trace ------------------------------------------------------------------------------------------


def test_the_trace_page_shows_hops_in_causal_order_and_highlights_the_failure(viewer_client):
    cid = fan_out()
    response = viewer_client.get(detail(cid))
    assert response.status_code == 200
    trace = response.context["trace"]
    assert [(hop.name, hop.depth, hop.outcome) for hop in trace.hops] == [
        ("checkout", 0, "ok"),
        ("reserve_stock", 1, "retried"),
        ("charge_card", 1, "failed"),
    ]
    page = response.content.decode()
    assert page.count('class="tr-hop tr-hop--failed"') == 1
    assert 'class="tr-alert"' in page and "PaymentDeclinedError: card declined" in page
    sequences = [row.event.sequence for row in trace.rows]
    assert sequences == sorted(sequences)


def test_the_trace_page_shows_when_the_id_was_minted(viewer_client):
    before = timezone.now().replace(microsecond=0)
    cid = fan_out()
    response = viewer_client.get(detail(cid))
    minted = response.context["minted_at"]
    assert before <= minted <= timezone.now()
    assert f'id="id-minted" title="{minted.isoformat()}' in response.content.decode()


def test_an_unknown_id_answers_404_with_an_explanation(viewer_client):
    response = viewer_client.get(detail("01JNOSUCHTRACE0000000000000"))
    assert response.status_code == 404
    assert "No events are stored for this ID" in response.content.decode()


def test_related_idempotency_records_are_linked(viewer_client, make_user):
    cid = fan_out()
    now = timezone.now()
    record = IdempotencyRecord.objects.create(
        key="01JIDEMPOTENCYKEY000000000",
        scope="user:1",
        operation="checkout",
        client_key="client-key-1",
        fingerprint="01JFINGERPRINT000000000000",
        owner="01JOWNER000000000000000000",
        correlation_id=cid,
        created_at=now,
        expires_at=now + timedelta(days=1),
        response_status=201,
    )
    page = viewer_client.get(detail(cid)).content.decode()
    assert "client-key-1" in page
    # The viewer may see traces, not idempotency records: no link they cannot follow.
    assert reverse("admin:tracing_app_idempotencyrecord_change", args=[record.pk]) not in page
    superuser = Client()
    superuser.force_login(make_user("root", staff=True, superuser=True))
    page = superuser.get(detail(cid)).content.decode()
    assert reverse("admin:tracing_app_idempotencyrecord_change", args=[record.pk]) in page


# -- escaping -------------------------------------------------------------------------------------------


def test_an_id_carrying_markup_is_escaped_everywhere(viewer_client, store):
    cid = store(XSS)
    for response in (
        viewer_client.get(LIST),
        viewer_client.get(detail(cid)),
        viewer_client.get(LIST, {"q": XSS}, follow=True),
        viewer_client.get(LIST, {"q": XSS + "x"}),
    ):
        page = response.content.decode()
        assert XSS not in page
        assert ESCAPED in page or "&lt;script&gt;alert(&#x27;xss&#x27;)&lt;/scr" in page


def test_headers_carrying_markup_are_escaped(viewer_client, tracing, client):
    response = client.get("/ok/", headers={"X-Correlation-ID": XSS, "User-Agent": XSS})
    recorder.flush()
    page = viewer_client.get(detail(response["X-Correlation-ID"])).content.decode()
    assert XSS not in page
    assert page.count(ESCAPED) == 2


def test_task_arguments_carrying_markup_are_escaped(viewer_client):
    cid = fan_out(note=XSS)
    page = viewer_client.get(detail(cid)).content.decode()
    assert XSS not in page
    assert "&lt;script&gt;alert(&#x27;xss&#x27;)&lt;/script&gt;" in page or "\\u003cscript" in page


def test_an_idempotent_replay_links_the_record_and_the_original_transaction(viewer_client):
    original = fan_out()
    now = timezone.now()
    IdempotencyRecord.objects.create(
        key="01JREPLAYEDKEY000000000000",
        scope="user:1",
        operation="checkout",
        client_key="client-key-replayed",
        fingerprint="01JFINGERPRINT000000000000",
        owner="01JOWNER000000000000000000",
        correlation_id=original,
        created_at=now,
        expires_at=now + timedelta(days=1),
    )
    with bind(origin="http") as ctx:
        record(
            "idempotent.replay",
            name="checkout",
            status="201",
            attributes={"key": "01JREPLAYEDKEY000000000000", "first_correlation_id": original, "replay": 1},
        )
    recorder.flush()
    page = viewer_client.get(detail(ctx.correlation_id)).content.decode()
    assert "client-key-replayed" in page
    assert f'href="{detail(original)}"' in page
    assert f"replayed the outcome of checkout first answered in {original}" in page
