"""``manage.py checkout_demo`` reports what went wrong, and says so in its exit code."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest
from django.core.management import call_command

from checkout_demo.catalog import seed_products
from checkout_demo.customers import TOKENS_FILE, ensure_customers
from tests.support.worker import delete_queues, publishing_to, unique_queue


def run(url: str, tokens: Path, deadline: str = "90") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(
            "checkout_demo",
            "--url",
            url,
            "--deadline",
            deadline,
            "--tokens",
            str(tokens),
            stdout=out,
            stderr=err,
        )
    return exited.value.code, out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_no_demo_to_talk_to_exits_2(tmp_path):
    ensure_customers(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = run(f"http://127.0.0.1:{port}", tmp_path / TOKENS_FILE)
    assert code == 2
    assert "Is the demo running? Start it with ./dev demo" in err


def test_no_customer_tokens_exits_2(tmp_path):
    code, _, err = run("http://127.0.0.1:9", tmp_path / TOKENS_FILE)
    assert code == 2
    assert "two customers' API tokens" in err


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_checkouts_that_never_finish_fail_the_run(live_server, rabbitmq_url, tmp_path):
    seed_products()
    ensure_customers(tmp_path)
    queue = unique_queue("checkout-demo-nobody")
    try:
        with publishing_to(rabbitmq_url, queue):  # published, but no worker consumes the queue
            code, out, _ = run(live_server.url, tmp_path / TOKENS_FILE, deadline="1")
    finally:
        delete_queues(rabbitmq_url, queue)
    assert code == 1
    assert "7 of 7 scenarios ended wrong." in out
    assert out.count("problem: still processing at the deadline") == 7
    assert out.count("correlation ID: 01") == 7
