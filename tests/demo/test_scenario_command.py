"""``manage.py checkout_demo`` reports what went wrong, and says so in its exit code."""

from __future__ import annotations

import io
import socket

import pytest
from django.core.management import call_command

from checkout_demo.catalog import seed_products
from tests.support.worker import delete_queues, publishing_to, unique_queue


def run(url: str, deadline: str = "90") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("checkout_demo", "--url", url, "--deadline", deadline, stdout=out, stderr=err)
    return exited.value.code, out.getvalue(), err.getvalue()


def test_no_demo_to_talk_to_exits_2():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = run(f"http://127.0.0.1:{port}")
    assert code == 2
    assert "Is the demo running? Start it with ./dev demo" in err


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_checkouts_that_never_finish_fail_the_run(live_server, rabbitmq_url):
    seed_products()
    queue = unique_queue("checkout-demo-nobody")
    try:
        with publishing_to(rabbitmq_url, queue):  # published, but no worker consumes the queue
            code, out, _ = run(live_server.url, deadline="1")
    finally:
        delete_queues(rabbitmq_url, queue)
    assert code == 1
    assert "7 of 7 scenarios ended wrong." in out
    assert out.count("problem: still processing at the deadline") == 7
    assert out.count("correlation ID: 01") == 7
