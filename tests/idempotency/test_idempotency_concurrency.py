"""Concurrent and overlapping requests against a live server (real sockets, one thread per request)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connections
from django.test import override_settings
from django.test.testcases import LiveServerThread
from django.utils import timezone

from tests.idempotency.models import Effect
from tests.idempotency.views import GATES, Gate
from tests.support.waiting import wait_until
from tracing_app.conf import app_settings
from tracing_app.idempotency.models import IdempotencyRecord

# PostgreSQL: concurrent writers and its row locks are what these tests are about.
pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.idempotency.urls"),
]


def post(url: str, data: dict[str, Any], key: str) -> requests.Response:
    return requests.post(
        url,
        data=json.dumps(data),
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
        timeout=60,
    )


def retry_after(response: requests.Response) -> int:
    """The Retry-After of a 409 for a request still in progress."""
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_request_in_progress"
    return int(response.headers["Retry-After"])


class WideBacklogServer(ThreadedWSGIServer):
    # Django's listen backlog of 10 resets some of 50 simultaneous connections before they are accepted.
    request_queue_size = 128


class ServerThread(LiveServerThread):
    server_class = WideBacklogServer


@pytest.fixture(autouse=True)
def one_api_client() -> Iterator[None]:
    """Every request here is the same (anonymous) client, told apart by the scope function."""
    with override_settings(
        TRACING_APP={
            **app_settings.user_settings(),
            "IDEMPOTENCY_SCOPE": "tests.idempotency.scopes.api_client",
        }
    ):
        yield


@pytest.fixture
def live_url() -> Iterator[str]:
    """A threaded HTTP server in this process: one thread and one database connection per request."""
    thread = ServerThread("127.0.0.1", static_handler=lambda app: app)
    thread.daemon = True
    thread.start()
    assert thread.is_ready.wait(30)
    if thread.error:
        raise thread.error
    yield f"http://127.0.0.1:{thread.port}"
    thread.terminate()


@pytest.fixture
def gate() -> Iterator[Gate]:
    gate = GATES["held"] = Gate()
    yield gate
    gate.release.set()
    del GATES["held"]


@pytest.fixture(params=[False, True], ids=["autocommit", "atomic-requests"])
def atomic_requests(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", request.param)
    return request.param


def test_fifty_concurrent_posts_with_one_key_run_once(live_url: str) -> None:
    url = f"{live_url}/plain/"
    data = {"label": "fifty"}
    clients = 50
    barrier = threading.Barrier(clients)

    def send(_: int) -> requests.Response:
        barrier.wait(30)
        return post(url, data, "fifty-key")

    with ThreadPoolExecutor(clients) as pool:
        responses = list(pool.map(send, range(clients)))

    originals = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
    replays = [r for r in responses if r.headers.get("Idempotent-Replayed") == "true"]
    in_flight = [r for r in responses if r.status_code == 409]
    assert len(originals) == 1, [(r.status_code, r.text[:200]) for r in responses]
    assert len(originals) + len(replays) + len(in_flight) == clients
    original = originals[0]
    for replay in replays:
        assert replay.status_code == 201
        assert replay.content == original.content
        assert replay.headers["X-Correlation-ID"] == original.headers["X-Correlation-ID"]
    for busy in in_flight:
        assert busy.json()["error"]["code"] == "idempotency_request_in_progress"
        assert int(busy.headers["Retry-After"]) <= 5, "a fast view: a short wait, not the whole lease"
    assert Effect.objects.filter(label="fifty").count() == 1

    after = post(url, data, "fifty-key")
    assert after.headers["Idempotent-Replayed"] == "true"
    assert after.content == original.content
    assert IdempotencyRecord.objects.get().replay_count == len(replays) + 1


@pytest.fixture
def lease_mode() -> Iterator[None]:
    with override_settings(TRACING_APP={**app_settings.user_settings(), "IDEMPOTENCY_MODE": "lease"}):
        yield


def test_repeat_while_the_first_runs_gets_a_fast_409(
    live_url: str, gate: Gate, atomic_requests: bool, lease_mode: None
) -> None:
    """In "lease" mode, under ATOMIC_REQUESTS too: the claim commits on its own, so the repeat does not
    wait on the first request's transaction (it would block on the key's index until the first finished)."""
    url = f"{live_url}/plain/"
    data = {"label": "held", "outcome": "block"}
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, url, data, "held-key")
        assert gate.entered.wait(30)
        repeat = post(url, data, "held-key")
        assert not first.done()
        assert retry_after(repeat) <= 5, "the first request has run for a moment, not 60 s"
        gate.release.set()
        original = first.result(timeout=30)
    assert original.status_code == 201
    assert original.json()["in_transaction"] is True
    after = post(url, data, "held-key")
    assert after.headers["Idempotent-Replayed"] == "true"
    assert after.content == original.content
    assert Effect.objects.filter(label="held").count() == 1


def test_requests_the_guard_lets_through_keep_atomic_requests(live_url: str, atomic_requests: bool) -> None:
    url = f"{live_url}/plain/"
    assert requests.get(url, timeout=30).json()["in_transaction"] is atomic_requests
    no_key = requests.post(url, data=json.dumps({"label": "no-key"}), timeout=30)
    assert no_key.json()["in_transaction"] is atomic_requests


def test_a_stale_owner_loses_to_the_attempt_that_took_over(live_url: str, gate: Gate) -> None:
    """The first attempt outlives its lease (0.5 s); a retry takes the key over and completes. When the
    first one finally finishes, its completion is refused and its writes roll back."""
    url = f"{live_url}/short-lease/"
    data = {"label": "held", "outcome": "block"}
    with ThreadPoolExecutor(1) as pool:
        stale = pool.submit(post, url, data, "lease-key")
        assert gate.entered.wait(30)
        record = IdempotencyRecord.objects.get()
        wait_until(lambda: timezone.now() > record.lease_expires_at, timeout=10, what="the lease to expire")
        successor = post(url, data, "lease-key")
        assert successor.status_code == 201
        assert "Idempotent-Replayed" not in successor.headers
        gate.release.set()
        loser = stale.result(timeout=30)
    assert loser.status_code == 409
    assert loser.json()["error"]["code"] == "idempotency_request_in_progress"
    assert list(Effect.objects.filter(label="held").values_list("pk", flat=True)) == [
        successor.json()["effect"]
    ]
    record = IdempotencyRecord.objects.get()
    assert (record.state, record.attempts) == ("completed", 2)
    assert bytes(record.response_body) == successor.content
    assert post(url, data, "lease-key").content == successor.content


def backends_waiting_on_a_key() -> int:
    """Connections of this database blocked on a lock while claiming an idempotency key."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE %s",
            [f"%{IdempotencyRecord._meta.db_table}%"],
        )
        return cursor.fetchone()[0]


def test_one_commit_repeat_waits_for_the_first_and_gets_its_replay(live_url: str, gate: Gate) -> None:
    """In "transaction" mode the claim is uncommitted while the view runs: a repeat waits on the key,
    and once the first commits it is replayed instead of running."""
    url = f"{live_url}/plain/"
    data = {"label": "held", "outcome": "block"}
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(post, url, data, "waiting-key")
        assert gate.entered.wait(30)
        assert not IdempotencyRecord.objects.exists(), "the claim commits with the view, not before"
        repeat = pool.submit(post, url, data, "waiting-key")
        wait_until(backends_waiting_on_a_key, timeout=10, what="the repeat to wait on the key")
        assert not repeat.done()
        gate.release.set()
        original, replay = first.result(timeout=30), repeat.result(timeout=30)
    assert original.status_code == 201
    assert "Idempotent-Replayed" not in original.headers
    assert original.json()["lock_timeout"] == "0", "the claim's lock timeout is not the view's"
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == original.content
    assert Effect.objects.filter(label="held").count() == 1
    assert IdempotencyRecord.objects.get().replay_count == 1


def test_one_commit_repeat_gets_409_after_the_lock_timeout(live_url: str, gate: Gate) -> None:
    url = f"{live_url}/plain/"
    data = {"label": "held", "outcome": "block"}
    with (
        override_settings(TRACING_APP={**app_settings.user_settings(), "IDEMPOTENCY_LOCK_TIMEOUT": 0.3}),
        ThreadPoolExecutor(1) as pool,
    ):
        first = pool.submit(post, url, data, "timeout-key")
        assert gate.entered.wait(30)
        repeat = post(url, data, "timeout-key")
        assert not first.done()
        assert retry_after(repeat) == 1, "it waited 0.3 s: the first has run at least that long"
        gate.release.set()
        original = first.result(timeout=30)
        after = post(url, data, "timeout-key")
    assert original.status_code == 201
    assert after.headers["Idempotent-Replayed"] == "true"
    assert after.content == original.content
    assert Effect.objects.filter(label="held").count() == 1


def test_one_commit_exception_mid_view_leaves_no_claim(live_url: str) -> None:
    url = f"{live_url}/plain/"
    data = {"label": "raised", "outcome": "raise"}
    for _attempt in range(2):
        response = post(url, data, "raise-key")
        assert response.status_code == 500, "the retry runs at once: no 409, no claim to wait for"
        assert not IdempotencyRecord.objects.exists()
    assert not Effect.objects.filter(label="raised").exists()


def test_one_commit_crash_mid_view_lets_a_retry_run_at_once(live_url: str, gate: Gate) -> None:
    """The first attempt's database session dies mid-view (as when its process is killed): its claim goes
    with its transaction, so a retry runs at once instead of waiting for a lease to run out."""
    url = f"{live_url}/plain/"
    data = {"label": "held", "outcome": "block"}
    with ThreadPoolExecutor(1) as pool:
        crashed = pool.submit(post, url, data, "crash-key")
        assert gate.entered.wait(30)
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'idle in transaction' AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchall() == [(True,)]
        retry = post(url, data, "crash-key")
        gate.release.set()
        assert crashed.result(timeout=30).status_code == 500
    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry.headers
    assert list(Effect.objects.filter(label="held").values_list("pk", flat=True)) == [retry.json()["effect"]]
    record = IdempotencyRecord.objects.get()
    assert (record.state, record.attempts) == ("completed", 1)


def test_one_commit_keeps_422_and_400(live_url: str) -> None:
    url = f"{live_url}/plain/"
    assert post(url, {"label": "first"}, "reused-key").status_code == 201
    reused = post(url, {"label": "other"}, "reused-key")
    assert (reused.status_code, reused.json()["error"]["code"]) == (422, "idempotency_key_reused")
    invalid = post(url, {"label": "first"}, "")
    assert (invalid.status_code, invalid.json()["error"]["code"]) == (400, "idempotency_key_invalid")
    assert Effect.objects.filter(label__in=["first", "other"]).count() == 1
