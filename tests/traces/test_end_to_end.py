"""A checkout request fans out into tasks on a real worker; support staff open its trace in Chromium.

The worker is a real ``celery worker`` (prefork) on RabbitMQ, recording into this session's test
database (``TRACE_EVENTS=1``). The web side is Django's live server with the middleware in front.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By

from tests.support.browser import full_page_screenshot, save_screenshot
from tests.support.waiting import wait_until
from tests.support.worker import CeleryProcess, run_worker
from tests.traces.conftest import PASSWORD, events
from tracing_app.traces.models import TraceEvent

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.traces.urls"),
    pytest.mark.services,
]

XSS = "<script>alert('task')</script>"


@pytest.fixture(scope="module")
def worker(django_db_setup: Any, rabbitmq_url: str) -> Iterator[CeleryProcess]:
    with run_worker(
        rabbitmq_url, env={"TRACE_EVENTS": "1"}, extra_args=["--include", "tests.traces.tasks"]
    ) as process:
        yield process


@pytest.fixture
def web_tracing(settings: Any) -> None:
    """Recording on in this process; the background writer commits promptly for the worker's company."""
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_ENABLED": True, "TRACE_FLUSH_INTERVAL": 0.05}


def checkout(live_server: Any, order: str, note: str = "") -> str:
    response = requests.get(f"{live_server.url}/checkout/", params={"order": order, "note": note}, timeout=30)
    assert response.status_code == 200
    return response.json()["correlation_id"]


def finished_kinds(cid: str) -> list[tuple[str, str]]:
    return [
        (e.name.rpartition(".")[2], e.kind)
        for e in events(cid)
        if e.kind in ("task.succeeded", "task.failed")
    ]


def wait_for_fan_out(cid: str) -> list[TraceEvent]:
    wait_until(
        lambda: (
            sorted(finished_kinds(cid))
            == [
                ("charge_card", "task.failed"),
                ("reserve_stock", "task.succeeded"),
                ("send_confirmation", "task.succeeded"),
            ]
            and any(e.kind == "log" and e.name == "tests.traces.tasks" for e in events(cid))
        ),
        timeout=60,
        what="every task of the fan-out to finish and be recorded",
    )
    return events(cid)


@pytest.mark.usefixtures("web_tracing")
def test_a_sampled_transaction_is_recorded_whole_across_processes(live_server, worker):
    cid = checkout(live_server, "ord-1001")
    stored = wait_for_fan_out(cid)
    kinds = [(e.kind, e.name.rpartition(".")[2]) for e in stored]
    for expected in [
        ("request.started", ""),
        ("task.published", "reserve_stock"),
        ("task.published", "charge_card"),
        ("log", "traces"),
        ("request.finished", "checkout"),
        ("task.started", "reserve_stock"),
        ("task.retried", "reserve_stock"),
        ("task.published", "send_confirmation"),
        ("task.started", "send_confirmation"),
        ("task.failed", "charge_card"),
    ]:
        assert expected in kinds, expected
    assert kinds.count(("task.started", "reserve_stock")) == 2

    request_hop = stored[0].hop_id
    by_name: dict[str, TraceEvent] = {}
    for started in (e for e in stored if e.kind == "task.started"):
        by_name.setdefault(started.name.rpartition(".")[2], started)
    assert by_name["reserve_stock"].causation_id == request_hop
    assert by_name["charge_card"].causation_id == request_hop
    assert by_name["send_confirmation"].causation_id == by_name["reserve_stock"].hop_id
    assert by_name["send_confirmation"].attributes["kwargs"] == {"order_id": "ord-1001"}
    retry = [e for e in stored if e.hop_id == by_name["reserve_stock"].hop_id and e.kind == "task.started"][1]
    assert retry.attributes["retries"] == 1

    # Each attempt starts after the publish that sent it (the retry is published by the first attempt).
    for task_id in {e.attributes["task_id"] for e in stored if e.kind == "task.published"}:
        sent = [
            e.sequence for e in stored if e.kind == "task.published" and e.attributes["task_id"] == task_id
        ]
        ran = [e.sequence for e in stored if e.kind == "task.started" and e.hop_id == task_id]
        assert len(sent) == len(ran)
        assert all(start > publish for publish, start in zip(sent, ran, strict=True))
    assert {e.pid for e in stored if e.kind.startswith("request.")}.isdisjoint(
        {e.pid for e in stored if e.kind.startswith("task.") and e.kind != "task.published"}
    )
    failed = next(e for e in stored if e.kind == "task.failed")
    assert failed.attributes["exception"] == "tests.traces.tasks.PaymentDeclinedError"
    assert failed.attributes["message"] == "card declined for order ord-1001"
    # Celery's own "raised unexpected" line is the same exception: stored once, as the failure.
    assert not [e for e in stored if e.kind == "log" and e.error]


def test_an_unsampled_transaction_keeps_only_its_errors_in_every_process(live_server, worker, settings):
    settings.TRACING_APP = {
        **settings.TRACING_APP,
        "TRACE_ENABLED": True,
        "TRACE_FLUSH_INTERVAL": 0.05,
        "SAMPLE_RATE": 0.0,
    }
    dropped = checkout(live_server, "ord-2002")
    wait_until(lambda: events(dropped), timeout=60, what="the failed task's event")
    # A sampled transaction handled after it by the same worker process: once its events are stored,
    # anything the unsampled one had recorded would be stored too (one writer, first in, first out).
    settings.TRACING_APP = {**settings.TRACING_APP, "SAMPLE_RATE": 1.0}
    wait_for_fan_out(checkout(live_server, "ord-2003"))
    assert [(e.kind, e.name.rpartition(".")[2], e.error) for e in events(dropped)] == [
        ("task.failed", "charge_card", True)
    ]


@pytest.mark.browser
@pytest.mark.usefixtures("web_tracing")
def test_support_staff_see_the_whole_transaction_in_the_trace_page(live_server, worker, chromium, make_user):
    make_user("support", staff=True, permission=True)
    cid = checkout(live_server, "ord-4242", note=XSS)
    wait_for_fan_out(cid)

    chromium.get(f"{live_server.url}/admin/login/?next=/admin/tracing_app/trace/")
    chromium.find_element(By.NAME, "username").send_keys("support")
    chromium.find_element(By.NAME, "password").send_keys(PASSWORD)
    chromium.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_until(lambda: chromium.find_elements(By.ID, "trace-list"), what="the trace list")
    assert cid in chromium.find_element(By.ID, "trace-list").text
    save_screenshot(chromium, "trace-list")
    search = chromium.find_element(By.ID, "trace-search")
    search.send_keys(cid)
    search.submit()
    wait_until(lambda: chromium.find_elements(By.ID, "hops"), what="the trace page")

    assert chromium.find_element(By.ID, "correlation-id").text == cid
    rows = chromium.find_elements(By.CSS_SELECTOR, "#hops tbody tr")
    hops = [
        (
            row.find_element(By.CSS_SELECTOR, ".tr-hop__title").text.rpartition(".")[2],
            row.get_attribute("data-depth"),
            row.get_attribute("data-outcome"),
        )
        for row in rows
    ]
    assert hops == [
        ("checkout", "0", "ok"),
        ("reserve_stock", "1", "retried"),
        ("send_confirmation", "2", "ok"),
        ("charge_card", "1", "failed"),
    ]
    failing = rows[3]
    assert "tr-hop--failed" in failing.get_attribute("class")
    assert "PaymentDeclinedError: card declined for order ord-4242" in failing.text
    assert failing.value_of_css_property("background-color") != rows[0].value_of_css_property(
        "background-color"
    )
    alert = chromium.find_element(By.CSS_SELECTOR, ".tr-alert")
    assert "charge_card" in alert.text

    sequences = [
        int(r.get_attribute("data-sequence"))
        for r in chromium.find_elements(By.CSS_SELECTOR, "#timeline tr.tr-event")
    ]
    assert sequences == sorted(sequences)
    assert chromium.find_elements(By.CSS_SELECTOR, "#timeline tr.tr-event--log")

    # The task argument came back as text, never as markup that ran.
    assert "&lt;script&gt;alert('task')&lt;/script&gt;" in chromium.page_source
    assert not chromium.find_elements(By.XPATH, "//script[contains(., \"alert('task')\")]")
    assert chromium.execute_script("return document.readyState") == "complete"

    artifact = full_page_screenshot(chromium, "trace-view")
    assert artifact.stat().st_size > 10_000
    chromium.execute_script("document.documentElement.dataset.theme = 'dark'")
    full_page_screenshot(chromium, "trace-view-dark")
    chromium.execute_script("document.documentElement.dataset.theme = 'light'")


def test_a_recycled_pool_process_writes_its_events_before_it_exits(live_server, rabbitmq_url, web_tracing):
    """With --max-tasks-per-child=1 each child exits after one task, long before its writer's next
    interval (an hour here): only the flush on worker_process_shutdown can save its events."""
    with run_worker(
        rabbitmq_url,
        env={"TRACE_EVENTS": "1", "TRACE_FLUSH_INTERVAL": "3600"},
        extra_args=["--include", "tests.traces.tasks", "--max-tasks-per-child", "1"],
    ):
        cid = checkout(live_server, "ord-3003")
        stored = wait_for_fan_out(cid)
    assert len({e.pid for e in stored if e.kind == "task.started"}) == 4
