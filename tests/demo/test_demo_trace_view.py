"""The demo's checkout scenarios on a real worker, read in the trace view by headless Chromium.

One run of the seven scenarios feeds every check: the list (polls hidden, filters), search (an order ID,
a lowercase correlation ID, free text), each scenario's honest headline, the waterfall's time axis and
attempt segments, links to the order, and a page that fits a 390 px phone without sideways scrolling.
"""

from __future__ import annotations

import itertools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from checkout_demo.catalog import seed_products
from checkout_demo.customers import ensure_customers
from checkout_demo.scenario import Outcome, run_scenarios
from tests.support.browser import full_page_screenshot
from tests.support.waiting import wait_until
from tests.support.worker import run_worker
from tests.traces.conftest import PASSWORD, _nothing_left_behind  # noqa: F401  (autouse fixture)
from tracing_app.traces.models import Trace, TraceEvent
from tracing_app.traces.timeline import format_duration

pytestmark = [pytest.mark.services, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS = Path(__file__).resolve().parents[2] / "docs"
LIST = "/admin/tracing_app/trace/"


@dataclass
class Run:
    base: str
    outcomes: dict[str, Outcome]

    def cid(self, scenario: str) -> str:
        return self.outcomes[scenario].correlation_id

    def order_id(self, scenario: str) -> int:
        return self.outcomes[scenario].order["id"]


@pytest.fixture
def scenarios(live_server: Any, rabbitmq_url: str, settings: Any, tmp_path: Path) -> Run:
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_ENABLED": True, "TRACE_FLUSH_INTERVAL": 0.05}
    # Transactions earlier tests committed (their workers write until they stop) are not this run's.
    TraceEvent.objects.all().delete()
    Trace.objects.all().delete()
    seed_products()
    tokens = ensure_customers(tmp_path)
    with run_worker(rabbitmq_url, concurrency=2, env={"TRACE_EVENTS": "1"}):
        outcomes = {
            o.scenario.name: o for o in run_scenarios(live_server.url, deadline_seconds=120, tokens=tokens)
        }
        assert [(name, o.problems) for name, o in outcomes.items() if not o.ok] == []
        ids = [o.correlation_id for o in outcomes.values()]
        # Every hop has written its last event: no transaction is still in progress.
        wait_until(
            lambda: Trace.objects.filter(pk__in=ids).exclude(outcome="in progress").count() == len(ids),
            timeout=60,
            what="every checkout's last events",
        )
    return Run(live_server.url, outcomes)


@pytest.fixture
def browser(chromium: Any, scenarios: Run) -> Any:
    User.objects.create_superuser("root", password=PASSWORD)
    chromium.set_window_size(1440, 1000)
    chromium.get(f"{scenarios.base}/admin/login/?next={LIST}")
    chromium.find_element(By.NAME, "username").send_keys("root")
    chromium.find_element(By.NAME, "password").send_keys(PASSWORD)
    chromium.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_until(lambda: chromium.find_elements(By.ID, "trace-filters"), what="the trace list")
    return chromium


def listed(driver: Any) -> list[tuple[str, str]]:
    return [
        (row.get_attribute("data-correlation-id"), row.get_attribute("data-outcome"))
        for row in driver.find_elements(By.CSS_SELECTOR, "#trace-list tbody tr")
    ]


def search(driver: Any, text: str) -> None:
    page = driver.find_element(By.TAG_NAME, "html")
    box = driver.find_element(By.ID, "trace-search")
    box.clear()
    box.send_keys(text)
    box.submit()
    # The page searched from has a list too: wait for it to be replaced before reading the results.
    wait_until(lambda: replaced(page), what=f"the results for {text}")
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, ".tr-empty, #trace-list, #hops"), what=text)


def replaced(element: Any) -> bool:
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    return False


def open_trace(driver: Any, run: Run, scenario: str) -> None:
    driver.get(f"{run.base}/admin/tracing_app/trace/{run.cid(scenario)}/")
    wait_until(lambda: driver.find_elements(By.ID, "hops"), what=f"the trace of {scenario}")


def hop_rows(driver: Any) -> dict[str, Any]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#hops tbody tr")
    return {row.find_element(By.CSS_SELECTOR, ".tr-hop__title").text: row for row in rows}


_OVERFLOWING = """
const limit = window.innerWidth + 1;
return Array.from(document.querySelectorAll("body *"))
  .filter((el) => el.getBoundingClientRect().right > limit && !el.closest(".tr-scroll"))
  .slice(0, 8)
  .map((el) => `${el.tagName}#${el.id}.${el.className} ${Math.round(el.getBoundingClientRect().right)}`);
"""


def no_sideways_scroll(driver: Any) -> bool:
    """The page is no wider than the window (tables may scroll inside their own boxes)."""
    if driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"):
        return True
    raise AssertionError(f"wider than the window: {driver.execute_script(_OVERFLOWING)}")


def test_support_staff_read_the_demo_scenarios_in_the_trace_view(browser, scenarios):
    """One run of the scenarios (about 20 s on a real worker) serves every check."""
    check_the_list_shows_checkouts_not_polls_and_filters_them(browser, scenarios)
    check_search_finds_an_order_a_lowercase_id_and_words(browser, scenarios)
    for scenario, outcome in [
        ("success", "ok"),
        ("declined", "compensated"),
        ("gateway down", "compensated"),
        ("double submit", "ok"),
    ]:
        check_an_honest_headline(browser, scenarios, scenario, outcome)
    check_the_waterfall_is_drawn_on_time_with_one_segment_per_attempt(browser, scenarios)
    check_the_pages_fit_a_phone(browser, scenarios)


def check_the_list_shows_checkouts_not_polls_and_filters_them(browser: Any, scenarios: Run) -> None:
    rows = dict(listed(browser))
    expected = {
        "success": "ok",
        "slow gateway": "ok",
        "declined": "compensated",
        "timeout, retried": "ok",
        "charged, response lost": "ok",
        "gateway down": "compensated",
        "double submit": "ok",
    }
    assert {name: rows.get(scenarios.cid(name)) for name in expected} == expected
    # Polling GETs and stock reads are transactions of their own, hidden by default.
    assert not Trace.objects.filter(pk__in=list(rows), single_read=True).exists()
    assert Trace.objects.filter(single_read=True).count() > 10
    full_page(browser, "trace-list-1440")
    browser.set_window_size(1440, 1000)

    Select(browser.find_element(By.ID, "filter-outcome")).select_by_visible_text("compensated")
    browser.find_element(By.CSS_SELECTOR, "#trace-filters button[type=submit]").click()
    wait_until(lambda: "outcome=compensated" in browser.current_url, what="the outcome filter")
    compensated = listed(browser)
    assert {scenarios.cid("declined"), scenarios.cid("gateway down")} <= {cid for cid, _ in compensated}
    assert {outcome for _, outcome in compensated} == {"compensated"}

    browser.get(f"{scenarios.base}{LIST}?min_ms=3000")
    slow = {cid for cid, _ in listed(browser)}
    assert scenarios.cid("gateway down") in slow and scenarios.cid("success") not in slow
    assert all(Trace.objects.get(pk=cid).duration_ms >= 3000 for cid in slow)

    browser.get(f"{scenarios.base}{LIST}?reads=1")
    assert Trace.objects.filter(pk__in=[cid for cid, _ in listed(browser)], single_read=True).exists()


def check_search_finds_an_order_a_lowercase_id_and_words(browser: Any, scenarios: Run) -> None:
    down = scenarios.cid("gateway down")
    search(browser, f"order_id={scenarios.order_id('gateway down')}")
    assert (down, "compensated") in listed(browser)
    others = {scenarios.cid(name) for name in scenarios.outcomes} - {down}
    assert not others & {cid for cid, _ in listed(browser)}

    search(browser, down.lower())
    wait_until(lambda: browser.find_elements(By.ID, "correlation-id"), what="the redirect to the trace")
    assert browser.find_element(By.ID, "correlation-id").text == down

    browser.get(f"{scenarios.base}{LIST}")
    search(browser, "payment_unavailable")
    found = {cid for cid, _ in listed(browser)}
    assert down in found and not others & found
    search(browser, "charge_payment")
    assert {scenarios.cid(name) for name in scenarios.outcomes} <= {cid for cid, _ in listed(browser)}


def summary_of(driver: Any) -> tuple[str, str]:
    return (
        driver.find_element(By.ID, "trace-outcome").get_attribute("data-outcome"),
        driver.find_element(By.ID, "trace-duration").text,
    )


def check_an_honest_headline(browser: Any, scenarios: Run, scenario: str, outcome: str) -> None:
    open_trace(browser, scenarios, scenario)
    stored = TraceEvent.objects.filter(correlation_id=scenarios.cid(scenario)).order_by("timestamp")
    first, last = stored.first().timestamp, stored.last().timestamp
    assert summary_of(browser) == (outcome, format_duration((last - first).total_seconds() * 1000))
    if scenario == "double submit":
        outcomes = [row.get_attribute("data-outcome") for row in hop_rows(browser).values()]
        assert "replayed" in outcomes and "refused" in outcomes


def check_the_waterfall_is_drawn_on_time_with_one_segment_per_attempt(browser: Any, scenarios: Run) -> None:
    open_trace(browser, scenarios, "gateway down")
    events = list(TraceEvent.objects.filter(correlation_id=scenarios.cid("gateway down")))
    start = min(e.timestamp for e in events)
    axis = (max(e.timestamp for e in events) - start).total_seconds()
    rows = browser.find_elements(By.CSS_SELECTOR, "#hops tbody tr")
    assert browser.find_elements(By.ID, "clock-skew") == []
    for row in rows:
        hop_start = min(e.timestamp for e in events if e.hop_id == row.get_attribute("data-hop-id"))
        drawn = float(row.find_element(By.CSS_SELECTOR, ".tr-lane").get_attribute("data-offset"))
        # Compensation starts seconds after the request: drawn right by that share of the axis.
        assert drawn == pytest.approx(100 * (hop_start - start).total_seconds() / axis, abs=0.6)

    charge = hop_rows(browser)["charge_payment"]
    segments = [
        (float(s.get_attribute("data-offset")), float(s.get_attribute("data-width")))
        for s in charge.find_elements(By.CSS_SELECTOR, ".tr-seg")
    ]
    assert len(segments) == 4  # the first attempt and three retries
    for (offset, width), (next_offset, _) in itertools.pairwise(segments):
        assert next_offset > offset + width  # the backoff wait is a visible gap
    assert "(3 retries)" in charge.text
    assert hop_rows(browser)["charge_payment"].get_attribute("data-outcome") == "failed"
    # A segment leads to its attempt's events: the second attempt starts with a retried task's start.
    charge.find_elements(By.CSS_SELECTOR, ".tr-seg")[1].click()
    wait_until(lambda: "#event-" in browser.current_url, what="the jump to the attempt's events")
    target = browser.find_element(By.ID, browser.current_url.rpartition("#")[2])
    assert (target.get_attribute("data-kind"), "attempt 2" in target.text) == ("task.started", True)
    full_page(browser, "trace-gateway-down-1440")
    browser.set_window_size(1440, 1000)

    browser.find_element(By.LINK_TEXT, f"Order {scenarios.order_id('gateway down')}").click()
    wait_until(lambda: "/checkout_demo/order/" in browser.current_url, what="the order page")
    assert scenarios.cid("gateway down") in browser.find_element(By.ID, "content").text


def check_the_pages_fit_a_phone(browser: Any, scenarios: Run) -> None:
    browser.set_window_size(390, 844)
    browser.get(f"{scenarios.base}{LIST}")
    wait_until(lambda: browser.find_elements(By.ID, "trace-list"), what="the list at 390 px")
    assert no_sideways_scroll(browser)
    full_page(browser, "trace-list-390", width=390)
    browser.set_window_size(390, 844)
    open_trace(browser, scenarios, "gateway down")
    assert no_sideways_scroll(browser)
    lane = browser.find_element(By.CSS_SELECTOR, "#hops .tr-lane")
    assert lane.is_displayed() and lane.size["width"] > 200  # the waterfall, under each hop's name
    full_page(browser, "trace-gateway-down-390", width=390)
    browser.set_window_size(390, 844)
    browser.find_element(By.ID, "expand-all").click()
    assert no_sideways_scroll(browser)


def full_page(driver: Any, name: str, width: int = 1440) -> Path:
    """The whole page, saved as a test artifact, and to docs/ when TRACE_DOCS_SCREENSHOT=1."""
    path = full_page_screenshot(driver, name, width)
    if os.environ.get("TRACE_DOCS_SCREENSHOT") == "1":
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(path, DOCS / f"{name}.png")
    return path
