"""The scripted checkout scenarios: a real HTTP client of a running demo.

Each scenario places an order, as one of the demo's customers (an API token each), with its own
correlation ID (sent as ``X-Correlation-ID``, which the demo
trusts), starts checkout with a test payment method that makes the simulated gateway behave one way,
then polls the order until it ends or the deadline passes; the other customer must not see the order
(404). Nothing here touches the database: what it checks is what any client could see.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from tracing_app.ids import new_id

TERMINAL = ("confirmed", "failed")


class DemoUnreachable(Exception):
    """The demo did not answer, or not with its API."""


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    payment_method: str
    sku: str
    quantity: int
    expect_status: str
    expect_failure: str = ""
    # Payment attempts the shop must have made: at least this many (retries are visible here).
    min_attempts: int = 1
    double_submit: bool = False
    # The SKU is used by no other scenario, so its stock must be back where it started.
    stock_restored: bool = False


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("success", "a card that is charged at once", "pm_card_ok", "MUG-01", 1, "confirmed"),
    Scenario(
        "slow gateway",
        "the gateway answers slowly, within the timeout",
        "pm_card_slow",
        "MUG-01",
        1,
        "confirmed",
    ),
    Scenario(
        "declined",
        "the card is declined; stock is released",
        "pm_card_declined",
        "BOOK-01",
        1,
        "failed",
        expect_failure="payment_declined",
        stock_restored=True,
    ),
    Scenario(
        "timeout, retried",
        "the charge times out twice, is retried with backoff and succeeds",
        "pm_card_timeout",
        "MUG-01",
        1,
        "confirmed",
        min_attempts=2,
    ),
    Scenario(
        "charged, response lost",
        "the gateway charges but the answer is lost; the retry gets the same charge back",
        "pm_card_lost_response",
        "TEE-01",
        1,
        "confirmed",
        min_attempts=2,
    ),
    Scenario(
        "gateway down",
        "every charge times out; after the last retry the order fails and stock is released",
        "pm_card_unreachable",
        "STK-01",
        2,
        "failed",
        expect_failure="payment_unavailable",
        min_attempts=2,
        stock_restored=True,
    ),
    Scenario(
        "double submit",
        "the order is POSTed twice with one Idempotency-Key, checkout clicked twice",
        "pm_card_ok",
        "TEE-01",
        1,
        "confirmed",
        double_submit=True,
    ),
)


@dataclass
class Outcome:
    scenario: Scenario
    customer: str = ""
    order: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def correlation_id(self) -> str:
        return self.order.get("correlation_id", "")

    @property
    def status(self) -> str:
        return self.order.get("status", "not created")


class DemoClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Token {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise DemoUnreachable(f"{method} {self.base_url}{path} failed: {exc}") from exc

    def data(self, response: requests.Response) -> Any:
        try:
            return response.json()["data"]
        except (ValueError, KeyError) as exc:
            raise DemoUnreachable(
                f"{response.request.method} {response.url} answered {response.status_code} without an API "
                f"envelope: {response.text[:200]!r}"
            ) from exc

    def stock(self) -> dict[str, int]:
        response = self.call("GET", "/api/products/")
        return {product["sku"]: product["stock"] for product in self.data(response)}


def run_scenarios(
    base_url: str,
    deadline_seconds: float = 90.0,
    scenarios: Sequence[Scenario] = SCENARIOS,
    progress: Callable[[str], None] = lambda message: None,
    *,
    tokens: Mapping[str, str],
) -> list[Outcome]:
    """Run every scenario at once against ``base_url``, the customers (username -> API token) taking
    turns, and return how each ended."""
    if len(tokens) < 2:
        raise DemoUnreachable("The scenarios need two customers' API tokens; ./dev demo creates them.")
    clients = {customer: DemoClient(base_url, token) for customer, token in tokens.items()}
    customers = list(clients)
    anyone = clients[customers[0]]
    stock_before = anyone.stock()
    outcomes = [
        Outcome(scenario, customer=customers[index % len(customers)])
        for index, scenario in enumerate(scenarios)
    ]
    for outcome in outcomes:
        others = [client for customer, client in clients.items() if customer != outcome.customer]
        _place(clients[outcome.customer], others[0], outcome)
        progress(f"placed {outcome.scenario.name} as {outcome.customer}: {outcome.status}")
    _wait(clients, [o for o in outcomes if o.order.get("id")], time.monotonic() + deadline_seconds, progress)
    stock_after = anyone.stock()
    for outcome in outcomes:
        if outcome.order:
            _check(outcome, stock_before, stock_after)
    return outcomes


def _place(client: DemoClient, other: DemoClient, outcome: Outcome) -> None:
    scenario = outcome.scenario
    correlation_id = new_id()
    body = {
        "email": f"{outcome.customer}@example.com",
        "lines": [{"product": scenario.sku, "quantity": scenario.quantity}],
    }
    headers = {"Idempotency-Key": str(uuid.uuid4()), "X-Correlation-ID": correlation_id}
    created = client.call("POST", "/api/orders/", json=body, headers=headers)
    if created.status_code != 201:
        outcome.problems.append(f"creating the order answered {created.status_code}: {created.text[:300]}")
        return
    outcome.order = client.data(created)
    peek = other.call("GET", outcome.order["links"]["self"])
    if peek.status_code != 404:
        outcome.problems.append(f"another customer reading the order got {peek.status_code}; expected 404")
    if scenario.double_submit:
        again = client.call("POST", "/api/orders/", json=body, headers=headers)
        replayed = again.status_code == 201 and client.data(again)["id"] == outcome.order["id"]
        if not replayed or again.headers.get("Idempotent-Replayed") != "true":
            outcome.problems.append(
                f"the repeated POST answered {again.status_code} (Idempotent-Replayed: "
                f"{again.headers.get('Idempotent-Replayed')}) with {again.text[:300]}; expected a replay of "
                f"order {outcome.order['id']}"
            )
        else:
            outcome.notes.append(
                f"repeated POST replayed order {outcome.order['id']} (Idempotent-Replayed: true)"
            )
    checkout_path = outcome.order["links"]["checkout"]
    trace = {"X-Correlation-ID": outcome.correlation_id}
    started = client.call(
        "POST", checkout_path, json={"payment_method": scenario.payment_method}, headers=trace
    )
    if started.status_code != 202:
        outcome.problems.append(f"starting checkout answered {started.status_code}: {started.text[:300]}")
        return
    outcome.order = client.data(started)
    if scenario.double_submit:
        again = client.call(
            "POST", checkout_path, json={"payment_method": scenario.payment_method}, headers=trace
        )
        if again.status_code != 409:
            outcome.problems.append(f"a second checkout answered {again.status_code}; expected 409")
        else:
            outcome.notes.append("second checkout refused with 409 " + again.json()["error"]["code"])


def _wait(
    clients: Mapping[str, DemoClient],
    outcomes: list[Outcome],
    deadline: float,
    progress: Callable[[str], None],
) -> None:
    pending = [o for o in outcomes if o.status not in TERMINAL]
    while pending:
        for outcome in list(pending):
            client = clients[outcome.customer]
            outcome.order = client.data(client.call("GET", outcome.order["links"]["self"]))
            if outcome.status in TERMINAL:
                pending.remove(outcome)
                progress(f"{outcome.scenario.name}: {outcome.status}")
        if pending and time.monotonic() >= deadline:
            for outcome in pending:
                outcome.problems.append(f"still {outcome.status} at the deadline")
            return
        if pending:
            time.sleep(0.25)


def _check(outcome: Outcome, stock_before: dict[str, int], stock_after: dict[str, int]) -> None:
    scenario, order = outcome.scenario, outcome.order
    if order["status"] != scenario.expect_status:
        outcome.problems.append(f"ended {order['status']}, expected {scenario.expect_status}")
    failure = (order.get("failure") or {}).get("code", "")
    if failure != scenario.expect_failure:
        outcome.problems.append(
            f"failure code {failure or 'none'!r}, expected {scenario.expect_failure or 'none'!r}"
        )
    payment = order.get("payment") or {}
    attempts = payment.get("attempts", 0)
    if attempts < scenario.min_attempts:
        outcome.problems.append(f"{attempts} payment attempt(s), expected at least {scenario.min_attempts}")
    if scenario.expect_status == "confirmed":
        if payment.get("status") != "captured" or not payment.get("charge_id"):
            outcome.problems.append(f"payment is {payment}, expected captured with a charge ID")
        if not order.get("shipment"):
            outcome.problems.append("no shipment was booked")
    if payment:
        charge = f", charge {payment['charge_id']}" if payment.get("charge_id") else ""
        outcome.notes.append(f"payment {payment['status']} after {attempts} attempt(s){charge}")
    if scenario.stock_restored:
        sku = scenario.sku
        if stock_after.get(sku) != stock_before.get(sku):
            outcome.problems.append(f"stock of {sku} is {stock_after.get(sku)}, was {stock_before.get(sku)}")
        else:
            outcome.notes.append(f"stock of {sku} back to {stock_after[sku]}")
