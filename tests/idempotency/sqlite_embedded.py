"""The single-connection tests, run again on a SQLite file (as the demo's embedded default) by
test_idempotency_sqlite.py in a pytest subprocess with ``DATABASE_URL=sqlite:///...``.

Not named ``test_*.py``: the main run must not collect it a second time.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client

from tests.idempotency.conftest import visitor
from tests.idempotency.models import Effect
from tests.idempotency.test_idempotency_http import (  # noqa: F401  (collected here again)
    TestConfiguredViews,
    TestDRF,
    alice,
    bob,
    post,
    test_an_exception_releases_the_key_and_rolls_back,
    test_another_users_key_never_replays_their_response,
    test_client_errors_are_stored_and_replayed,
    test_malformed_or_oversized_key_is_refused,
    test_missing_key,
    test_repeat_is_replayed_byte_for_byte_with_the_first_correlation_id,
    test_same_key_with_another_payload_is_refused,
    test_server_errors_are_not_stored_and_their_writes_roll_back,
    test_too_large_a_response_keeps_the_key_but_not_the_body,
)
from tests.idempotency.test_idempotency_store import (  # noqa: F401
    claim,
    test_completed_record_is_returned_for_replay,
    test_expired_lease_is_taken_over_and_the_stale_owner_cannot_complete,
    test_expired_record_starts_over_even_for_another_payload,
    test_first_claim_acquires_and_a_repeat_sees_it_in_flight,
    test_purge_deletes_expired_records_in_batches,
    test_stale_completion_rolls_back_the_side_effect_written_with_it,
)
from tests.idempotency.test_idempotency_tasks import (  # noqa: F401
    test_a_failure_rolls_back_and_releases_the_key,
    test_a_repeat_in_the_same_transaction_returns_the_stored_result,
    test_an_explicit_key_spans_transactions_and_refuses_other_arguments,
    test_eager_task_is_keyed_by_its_task_name,
)
from tests.idempotency.views import GATES, Gate

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.idempotency.urls")]


def test_runs_on_sqlite(django_assert_num_queries: Any) -> None:
    assert connection.vendor == "sqlite"
    with django_assert_num_queries(2) as queries:
        claim("sqlite")
    read, insert = (query["sql"] for query in queries.captured_queries)
    assert read.startswith("SELECT")
    assert insert.startswith('INSERT OR IGNORE INTO "tracing_app_idempotencyrecord"')


@pytest.mark.django_db(transaction=True)
def test_a_repeat_does_not_wait_for_the_write_lock_of_the_running_attempt() -> None:
    """SQLite has one writer: the first attempt's view holds the write lock until it commits, so the
    repeat must answer 409 from a read instead of queueing for the lock (and failing with "database is
    locked" after the timeout)."""
    gate = GATES["held"] = Gate()
    data = {"label": "held", "outcome": "block"}
    session = visitor().cookies

    def same_visitor() -> Client:
        client = Client()
        client.cookies = session
        return client

    def first_attempt() -> Any:
        try:
            return post(same_visitor(), "/plain/", data, "held-key")
        finally:
            connections.close_all()

    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(first_attempt)
            assert gate.entered.wait(30)
            repeat = post(same_visitor(), "/plain/", data, "held-key")
            assert repeat.status_code == 409
            assert repeat.json()["error"]["code"] == "idempotency_request_in_progress"
            gate.release.set()
            original = first.result(timeout=30)
    finally:
        gate.release.set()
        del GATES["held"]
    assert original.status_code == 201
    replay = post(same_visitor(), "/plain/", data, "held-key")
    assert replay.content == original.content
    assert Effect.objects.filter(label="held").count() == 1
