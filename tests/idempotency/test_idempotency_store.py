"""Claim, takeover, completion and purge against PostgreSQL, including races between connections."""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.utils import timezone

from tests.idempotency.models import Effect
from tracing_app.idempotency import store
from tracing_app.idempotency.keys import record_key
from tracing_app.idempotency.models import IdempotencyRecord
from tracing_app.idempotency.store import LeaseLost, Outcome

# PostgreSQL: its claim and replay statements (INSERT ... ON CONFLICT, UPDATE ... RETURNING), row locks
# and concurrent writers; the SQLite path runs again in test_idempotency_sqlite.py.
pytestmark = [pytest.mark.services, pytest.mark.django_db]


def claim(client_key: str = "k", fingerprint: str = "f", **overrides: Any) -> store.ClaimResult:
    arguments = {
        "scope": "user:1",
        "operation": "http",
        "client_key": client_key,
        "fingerprint": fingerprint,
        "lease": 60,
        "ttl": 3600,
        "using": "default",
        "correlation_id": "01TESTCORRELATION000000000",
        **overrides,
    }
    return store.claim(**arguments)


def expire_lease(key: str) -> None:
    IdempotencyRecord.objects.filter(pk=key).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_first_claim_acquires_and_a_repeat_sees_it_in_flight() -> None:
    first = claim()
    assert first.outcome is Outcome.ACQUIRED
    assert first.claim.key == record_key("user:1", "http", "k")
    record = IdempotencyRecord.objects.get()
    assert (record.state, record.owner, record.attempts) == ("in_progress", first.claim.owner, 1)
    assert record.correlation_id == "01TESTCORRELATION000000000"
    assert record.expires_at - record.created_at == timedelta(seconds=3600)

    repeat = claim()
    assert repeat.outcome is Outcome.IN_FLIGHT
    assert repeat.retry_after == 1, "the first attempt has only just started: not the whole lease"
    assert claim(fingerprint="other").outcome is Outcome.MISMATCH


def test_retry_after_grows_with_how_long_the_attempt_has_run_and_ends_with_its_lease() -> None:
    first = claim().claim
    started_20_s_ago = timezone.now() + timedelta(seconds=40)  # of a 60 s lease
    IdempotencyRecord.objects.filter(pk=first.key).update(lease_expires_at=started_20_s_ago)
    assert 20 <= claim().retry_after <= 21
    started_55_s_ago = timezone.now() + timedelta(seconds=5)
    IdempotencyRecord.objects.filter(pk=first.key).update(lease_expires_at=started_55_s_ago)
    assert 4 <= claim().retry_after <= 5


def test_completed_record_is_returned_for_replay() -> None:
    first = claim().claim
    first.complete(status=201, headers=[("Content-Type", "text/plain")], body=b"done", size=4)
    again = claim()
    assert again.outcome is Outcome.COMPLETED
    assert bytes(again.record.response_body) == b"done"
    assert again.record.response_headers == [["Content-Type", "text/plain"]]
    assert again.record.lease_expires_at is None
    assert again.record.replay_count == IdempotencyRecord.objects.get().replay_count == 1


@pytest.mark.django_db(transaction=True)
def test_a_replay_is_counted_by_the_statement_that_reads_it(django_assert_num_queries: Any) -> None:
    claim().claim.complete(status=201, body=b"done", size=4)
    with django_assert_num_queries(2) as queries:
        again = claim()
    insert, replay = (query["sql"] for query in queries.captured_queries)
    assert insert.endswith("ON CONFLICT DO NOTHING") and "RETURNING" in replay
    # Outside a transaction the count commits without waiting for the disk; inside one, with it.
    assert "synchronous_commit" in replay
    with transaction.atomic(), django_assert_num_queries(2) as queries:
        assert claim().outcome is Outcome.COMPLETED
    assert "synchronous_commit" not in queries.captured_queries[1]["sql"]
    assert (again.outcome, bytes(again.record.response_body)) == (Outcome.COMPLETED, b"done")
    assert again.record.correlation_id == "01TESTCORRELATION000000000"
    assert claim().record.replay_count == 3
    # What is not a replay is not counted.
    assert claim(fingerprint="other").outcome is Outcome.MISMATCH
    assert IdempotencyRecord.objects.get().replay_count == 3


@pytest.mark.django_db(transaction=True)
def test_a_committed_replay_reads_only_the_stored_response(django_assert_num_queries: Any) -> None:
    claim().claim.complete(status=201, headers=[("Content-Type", "text/plain")], body=b"done", size=4)
    replay = functools.partial(
        store.replay_committed, scope="user:1", operation="http", client_key="k", using="default"
    )
    with django_assert_num_queries(1) as queries:
        replayed = replay(fingerprint="f")
    (statement,) = (query["sql"] for query in queries.captured_queries)
    returned = statement.split("RETURNING", 1)[1]
    assert '"created_at"' not in returned and '"response_body"' in returned
    assert returned.rstrip().endswith("set_config('synchronous_commit', 'off', true) AS durability")
    assert replayed == store.Replayed(
        key=record_key("user:1", "http", "k"),
        operation="http",
        client_key="k",
        correlation_id="01TESTCORRELATION000000000",
        response_status=201,
        response_headers=[["Content-Type", "text/plain"]],
        response_body=replayed.response_body,
        response_size=4,
        replay_count=1,
    )
    assert bytes(replayed.response_body) == b"done"
    # A lookup that matches nothing (another fingerprint) neither counts nor answers.
    assert replay(fingerprint="other") is None
    assert IdempotencyRecord.objects.get().replay_count == 1
    # The asynchronous commit was the statement's own: the session keeps its setting.
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
    # Inside a transaction the replay's count commits with it, as the caller's commit says.
    with transaction.atomic(), django_assert_num_queries(1) as queries:
        assert replay(fingerprint="f").replay_count == 2
    assert "synchronous_commit" not in queries.captured_queries[0]["sql"]


def test_the_asynchronous_count_is_set_only_by_a_replay() -> None:
    """The conflicting read's set_config sits in a CTE's RETURNING: computed for a replayed row alone."""
    claim().claim.complete(status=201, body=b"done", size=4)
    key = record_key("user:1", "http", "k")
    sql = store._read_conflicting_sql("default", asynchronous=True)

    def read(fingerprint: str) -> tuple[Any, str]:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [key, "completed", fingerprint, timezone.now(), key])
            row = cursor.fetchone()
            cursor.execute("SHOW synchronous_commit")
            return row, cursor.fetchone()[0]

    (mismatch, *_, durability), setting = read("other")
    assert (mismatch, durability, setting) == (False, None, "on")
    (replayed, *_, durability), setting = read("f")
    assert (replayed, setting) == (True, "off")


def test_the_claim_sends_only_the_requests_own_values(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1) as queries:
        claim("literal")
    (insert,) = (query["sql"] for query in queries.captured_queries)
    # What every fresh claim writes alike is part of the statement's text.
    assert "CAST('in_progress' AS varchar(16)), CAST(1 AS integer), CAST(NULL AS smallint)" in insert
    record = IdempotencyRecord.objects.get()
    assert (record.state, record.attempts, record.response_headers, record.replay_count) == (
        IdempotencyRecord.State.IN_PROGRESS,
        1,
        [],
        0,
    )
    assert record.response_status is record.response_body is record.completed_at is None


def test_expired_lease_is_taken_over_and_the_stale_owner_cannot_complete() -> None:
    stale = claim().claim
    expire_lease(stale.key)
    successor = claim()
    assert successor.outcome is Outcome.ACQUIRED
    assert successor.claim.attempt == 2
    assert successor.claim.owner != stale.owner

    with pytest.raises(LeaseLost):
        stale.complete(status=201, body=b"stale")
    assert stale.release() is False
    successor.claim.complete(status=201, body=b"fresh")
    record = IdempotencyRecord.objects.get()
    assert (record.state, bytes(record.response_body), record.attempts) == ("completed", b"fresh", 2)
    assert record.correlation_id == "01TESTCORRELATION000000000", "the first attempt's ID is kept"


def test_an_owner_whose_lease_ran_out_still_completes_if_nobody_took_over() -> None:
    late = claim().claim
    expire_lease(late.key)
    late.complete(status=200, body=b"late but alone")
    assert claim().outcome is Outcome.COMPLETED


def test_stale_completion_rolls_back_the_side_effect_written_with_it() -> None:
    stale = claim().claim
    expire_lease(stale.key)
    claim()

    def effect_with_its_record() -> None:
        with transaction.atomic():
            Effect.objects.create(label="stale-effect")
            stale.complete(status=201, body=b"x")

    with pytest.raises(LeaseLost):
        effect_with_its_record()
    assert not Effect.objects.filter(label="stale-effect").exists()


def test_release_lets_the_next_attempt_run() -> None:
    first = claim().claim
    assert first.release() is True
    assert not IdempotencyRecord.objects.exists()
    assert claim().outcome is Outcome.ACQUIRED


def test_expired_record_starts_over_even_for_another_payload() -> None:
    first = claim().claim
    first.complete(status=201, body=b"old")
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1), replay_count=3)
    again = claim(fingerprint="new payload", correlation_id="01NEWCORRELATION0000000000")
    assert again.outcome is Outcome.ACQUIRED
    record = IdempotencyRecord.objects.get()
    assert (record.state, record.fingerprint, record.replay_count) == ("in_progress", "new payload", 0)
    assert record.correlation_id == "01NEWCORRELATION0000000000"
    assert record.response_body is None


def test_expired_record_with_a_live_lease_is_not_reset() -> None:
    claim()
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert claim().outcome is Outcome.IN_FLIGHT


@pytest.mark.django_db(transaction=True)
def test_the_claim_is_one_insert_and_no_table_lock(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1) as queries:
        claim("fresh")
    (insert,) = (query["sql"] for query in queries.captured_queries)
    assert insert.startswith('INSERT INTO "tracing_app_idempotencyrecord"')
    assert insert.endswith("ON CONFLICT DO NOTHING")
    with django_assert_num_queries(2) as queries:
        claim("fresh")
    assert all("LOCK" not in query["sql"].upper() for query in queries.captured_queries)


def make_records(count: int, *, expired: bool, **fields: Any) -> None:
    now = timezone.now()
    expires = now - timedelta(seconds=1) if expired else now + timedelta(hours=1)
    IdempotencyRecord.objects.bulk_create(
        IdempotencyRecord(
            key=f"{'E' if expired else 'L'}{fields.get('state', 'c')[:1]}{index:024d}",
            scope="s",
            operation="o",
            client_key=str(index),
            fingerprint="f",
            owner="o",
            state=fields.get("state", "completed"),
            lease_expires_at=fields.get("lease_expires_at"),
            created_at=now,
            expires_at=expires,
        )
        for index in range(count)
    )


def test_purge_deletes_expired_records_in_batches(django_assert_num_queries: Any) -> None:
    make_records(7, expired=True)
    make_records(3, expired=False)
    # Expired, but its attempt still holds a live lease: kept until the lease ends.
    make_records(1, expired=True, state="in_progress", lease_expires_at=timezone.now() + timedelta(minutes=1))
    out = StringIO()
    # 3 batches of 3, 3 and 1, each one SELECT of keys and one DELETE, plus the SELECT finding none.
    with django_assert_num_queries(7):
        call_command("purge_idempotency", "--batch-size", "3", stdout=out)
    assert out.getvalue().strip() == "Deleted 7 expired idempotency record(s)."
    assert IdempotencyRecord.objects.count() == 4
    assert not IdempotencyRecord.objects.filter(state="completed", expires_at__lte=timezone.now()).exists()


def test_purge_refuses_a_bad_batch_size() -> None:
    with pytest.raises(CommandError, match="at least 1"):
        call_command("purge_idempotency", "--batch-size", "0")


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_have_exactly_one_winner() -> None:
    contenders = 20
    barrier = threading.Barrier(contenders)

    def contend(_: int) -> Outcome:
        try:
            barrier.wait(10)
            return claim("raced").outcome
        finally:
            connections.close_all()

    with ThreadPoolExecutor(contenders) as pool:
        outcomes = list(pool.map(contend, range(contenders)))
    assert outcomes.count(Outcome.ACQUIRED) == 1
    assert outcomes.count(Outcome.IN_FLIGHT) == contenders - 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_takeovers_have_exactly_one_winner() -> None:
    claim("dead")
    expire_lease(record_key("user:1", "http", "dead"))
    contenders = 10
    barrier = threading.Barrier(contenders)

    def contend(_: int) -> store.ClaimResult:
        try:
            barrier.wait(10)
            return claim("dead")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(contenders) as pool:
        results = list(pool.map(contend, range(contenders)))
    winners = [result for result in results if result.outcome is Outcome.ACQUIRED]
    assert len(winners) == 1
    assert winners[0].claim.attempt == 2
    assert IdempotencyRecord.objects.get().owner == winners[0].claim.owner


@pytest.mark.django_db(transaction=True)
def test_claim_is_visible_at_once_while_the_owners_transaction_is_open() -> None:
    """The claim commits by itself: another connection sees "in flight" instead of blocking on the index."""
    acquired = claim("visible")
    assert acquired.outcome is Outcome.ACQUIRED
    with transaction.atomic():
        Effect.objects.create(label="open transaction")
        assert connection.in_atomic_block

        def other_connection() -> Outcome:
            try:
                return claim("visible").outcome
            finally:
                connections.close_all()

        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(other_connection).result(timeout=10) is Outcome.IN_FLIGHT
        acquired.claim.complete(status=201, body=b"ok")
    assert claim("visible").outcome is Outcome.COMPLETED
