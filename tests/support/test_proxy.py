"""The fault-injection TCP proxy against the machine's real PostgreSQL, RabbitMQ and Redis."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import kombu.exceptions
import psycopg
import pytest
from kombu import Connection, Exchange, Queue

from tests.support.proxy import tcp_proxy
from tests.support.waiting import wait_until
from tests.support.worker import delete_queues, publishing_to, run_worker
from tests.taskapp.tasks import record

pytestmark = pytest.mark.services

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONFIRMED = {"confirm_publish": True}


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


def query_one(url: str, sql: str = "SELECT 1") -> object:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return conn.execute(sql).fetchone()[0]


def test_url_for_keeps_credentials_and_path_and_rejects_another_port():
    with tcp_proxy(5672) as proxy:
        assert proxy.url_for("amqp://guest:secret@127.0.0.1:5672//") == (
            f"amqp://guest:secret@127.0.0.1:{proxy.port}//"
        )
        assert proxy.url_for("redis://localhost/1") == f"redis://127.0.0.1:{proxy.port}/1"
        with pytest.raises(ValueError, match="6379"):
            proxy.url_for("redis://127.0.0.1:6379/1")


def test_postgres_query_fails_while_cut_and_a_new_connection_works_after_restore():
    with tcp_proxy(5432) as proxy:
        url = proxy.url_for(POSTGRES_URL)
        with psycopg.connect(url, connect_timeout=5) as conn:
            assert conn.execute("SELECT 41 + 1").fetchone()[0] == 42
            assert proxy.connections == 1

            proxy.cut()
            assert proxy.connections == 0
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError):
            query_one(url)
        assert proxy.refused >= 1

        proxy.restore()
        assert query_one(url, "SELECT 'back'") == "back"
        assert proxy.accepted == 2


def test_tens_of_connections_at_once_then_all_cut_together():
    clients = 40
    with tcp_proxy(5432) as proxy:
        url = proxy.url_for(POSTGRES_URL)
        all_connected = threading.Barrier(clients, timeout=30)

        def hold_one(index: int) -> int:
            with psycopg.connect(url, connect_timeout=10) as conn:
                value = conn.execute("SELECT %s::int", (index,)).fetchone()[0]
                all_connected.wait()
                return value

        with ThreadPoolExecutor(clients) as pool:
            assert sorted(pool.map(hold_one, range(clients))) == list(range(clients))
        assert proxy.accepted == clients
        wait_until(lambda: proxy.connections == 0, what="the clients' connections to close")

        opened = [psycopg.connect(url, connect_timeout=10) for _ in range(clients)]
        try:
            assert proxy.connections == clients
            proxy.cut()
            assert proxy.connections == 0
            for conn in opened:
                with pytest.raises(psycopg.OperationalError):
                    conn.execute("SELECT 1")
        finally:
            for conn in opened:
                conn.close()


def test_large_results_arrive_whole():
    with tcp_proxy(5432) as proxy:
        size = 8_000_000
        assert query_one(proxy.url_for(POSTGRES_URL), f"SELECT md5(repeat('x', {size}))") == query_one(
            POSTGRES_URL, f"SELECT md5(repeat('x', {size}))"
        )
        value = query_one(proxy.url_for(POSTGRES_URL), f"SELECT repeat('ab', {size // 2})")
        assert value == "ab" * (size // 2)


def test_delay_slows_every_round_trip():
    with tcp_proxy(5432) as proxy, psycopg.connect(proxy.url_for(POSTGRES_URL)) as conn:
        proxy.delay = 0.2
        started = time.monotonic()
        conn.execute("SELECT 1")
        # One round trip: the query waits once on the way in, the answer once on the way out.
        assert time.monotonic() - started >= 0.4
        proxy.delay = 0.0
        assert conn.execute("SELECT 2").fetchone()[0] == 2


def test_closing_leaves_no_thread_and_no_listener():
    before = set(threading.enumerate())
    with tcp_proxy(5432) as proxy:
        port = proxy.port
        query_one(proxy.url_for(POSTGRES_URL))
        conn = psycopg.connect(proxy.url_for(POSTGRES_URL))
    assert set(threading.enumerate()) == before
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()
    with pytest.raises(psycopg.OperationalError):
        query_one(f"postgresql://postgres@127.0.0.1:{port}/postgres")


@pytest.mark.parametrize("broker", ["rabbitmq_url", "redis_url"])
def test_kombu_publish_fails_while_cut_and_works_after_restore(broker, request):
    url = request.getfixturevalue(broker)
    name = f"proxy-test-{uuid.uuid4().hex[:10]}"
    queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
    try:
        with tcp_proxy(port_of(url)) as proxy:
            proxied = proxy.url_for(url)
            # With confirms a publish returns once RabbitMQ has the message: none is lost at the cut.
            with Connection(proxied, connect_timeout=5, transport_options=CONFIRMED) as conn:
                producer = conn.Producer()
                producer.publish({"n": 1}, exchange=queue.exchange, routing_key=name, declare=[queue])
                assert proxy.connections >= 1  # Redis opens a second connection for its channel

                proxy.cut()
                with pytest.raises(conn.connection_errors):
                    producer.publish({"n": 2}, exchange=queue.exchange, routing_key=name, retry=False)
            with pytest.raises(kombu.exceptions.OperationalError), Connection(proxied) as conn:
                conn.ensure_connection(max_retries=1)

            proxy.restore()
            with Connection(proxied, connect_timeout=5, transport_options=CONFIRMED) as conn:
                conn.Producer().publish({"n": 3}, exchange=queue.exchange, routing_key=name, declare=[queue])

        received = []
        with Connection(url, connect_timeout=5) as conn, conn.SimpleQueue(queue) as simple:
            while len(received) < 2:
                message = simple.get(timeout=5)
                received.append(message.payload["n"])
                message.ack()
        assert received == [1, 3]
    finally:
        delete_queues(url, queue)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broker", ["rabbitmq_url", "redis_url"])
def test_a_celery_worker_reconnects_after_a_cut_and_keeps_consuming(broker, request, django_db_setup):
    url = request.getfixturevalue(broker)
    with (
        tcp_proxy(port_of(url)) as proxy,
        # Results go straight to their store: only the worker's link to the broker goes through the proxy.
        run_worker(
            proxy.url_for(url), publish=False, result_backend=url if "redis" in url else None
        ) as worker,
        # The test publishes straight to the broker too.
        publishing_to(url, worker.queue, worker.result_backend),
    ):
        record.delay("before")
        worker.wait_for(lambda r: r.get("event") == "ran" and r["label"] == "before")

        proxy.cut()
        worker.wait_for(lambda r: "Connection to broker lost" in r["message"])
        record.delay("during")
        worker.wait_for(lambda r: "Cannot connect to" in r["message"])
        assert not [r for r in worker.records() if r.get("label") == "during"]

        proxy.restore()
        worker.wait_for(lambda r: r.get("event") == "ran" and r["label"] == "during", timeout=60)
        assert proxy.connections >= 1
        record.delay("after")
        worker.wait_for(lambda r: r.get("event") == "ran" and r["label"] == "after")
