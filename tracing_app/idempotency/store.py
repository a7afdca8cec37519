"""Claiming, completing and releasing idempotency records.

Each step is one statement on the record's primary key; nothing locks a table:

- **claim**: ``INSERT ... ON CONFLICT DO NOTHING`` (``INSERT OR IGNORE`` on SQLite). Whoever inserts owns
  the key; everyone else reads the row they lost to. Run it outside any transaction (autocommit), before
  the operation's own transaction, so the row is visible at once: a concurrent repeat sees "in progress"
  instead of waiting on the index until the operation's transaction ends.
  (On PostgreSQL a repeat arriving in the instant between the owner's completing ``UPDATE`` and its
  ``COMMIT`` waits for that commit, then finds the record completed.)
- **replay**: a repeat of a completed attempt is counted (``replay_count``) and gets the stored outcome
  from one ``UPDATE ... RETURNING`` whose conditions are those of a replay (completed, unexpired, same
  fingerprint). On PostgreSQL that statement is also the claim's read of the row it lost to, so a
  replay takes two statements in all.
- **takeover**: an in-progress record whose lease expired (its attempt died) is handed to a new owner by
  an ``UPDATE`` that compares the old owner token, so two would-be successors cannot both win.
- **complete**: an ``UPDATE`` that names the owner token. Run it in the same transaction as the side
  effect's writes: if another attempt took the key over meanwhile, no row matches, :class:`LeaseLost`
  is raised and the stale attempt's writes roll back with it. A lease only lets others take over; an
  owner that finishes late still completes if nobody did.
- **release**: a ``DELETE`` naming the owner token, for outcomes that must not be kept (5xx, an exception),
  so a retry runs afresh.

**One commit** (PostgreSQL, ``lock_timeout`` given to :func:`claim`): the caller opens the transaction
first and the claim's ``INSERT`` is part of it, so the claim, the operation's writes and the completion
commit together, once. A concurrent repeat's ``INSERT`` then waits on the uncommitted key until that
transaction ends (at most ``lock_timeout`` seconds, then :class:`KeyLocked`) and finds the record
completed, or, when the first attempt rolled back, inserts it and runs. Nothing is left to release after a
crash, and no lease is read. A repeat of a completed record is answered before any transaction by
:func:`replay_committed`, one statement.

SQLite allows one writer at a time, so there a claim first reads the row: a repeat gets its 409, 422 or
replay without waiting for the write lock the running attempt holds until it commits. A new key's
``INSERT`` still waits for any other open write transaction (up to the database's ``timeout``).

Times come from the application's clock (``timezone.now()``); hosts sharing a database should keep their
clocks synchronised, since skew shortens or lengthens leases by as much.
"""

from __future__ import annotations

import contextvars
import dataclasses
import enum
import functools
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.db import DataError, OperationalError, connections
from django.db.models import F, Q, QuerySet
from django.db.models.constants import OnConflict
from django.utils import timezone

from tracing_app.idempotency.keys import NAMESPACE, record_key
from tracing_app.idempotency.models import IdempotencyRecord
from tracing_app.ids import derive_id, new_id
from tracing_app.model_columns import column, concrete_field
from tracing_app.traces import recorder

State = IdempotencyRecord.State

# One writer at a time: an INSERT waits behind any open write transaction, such as the first attempt's
# view, so a repeat reads first and answers (409, 422, replay) without writing. The INSERT still decides.
_SINGLE_WRITER_VENDORS = frozenset({"sqlite"})

# Data-modifying statements in WITH: a claim that lost its INSERT reads the record and counts a replay
# in one statement (see _read_conflicting).
_WRITING_CTE_VENDORS = frozenset({"postgresql"})

# A claim normally settles in one round; a second is needed only when the row changed between the
# insert and the read (purged, reset or taken over by someone else at that very moment).
_CLAIM_ROUNDS = 3


# The lock timeout set for a claim's INSERT, restored by the same statement once it inserted, so the
# operation's own statements keep the session's lock timeout. Also bounds the claim's later reads.
_SAVED_LOCK_TIMEOUT = "tracing_app.saved_lock_timeout"
_LOCK_NOT_AVAILABLE = "55P03"
_DIVISION_BY_ZERO = "22012"
_CONCRETE_FIELDS = IdempotencyRecord._meta.concrete_fields
_ATTNAMES = [field.attname for field in _CONCRETE_FIELDS]
_HEADERS_FIELD = concrete_field(IdempotencyRecord, "response_headers")
# What every fresh claim writes beside the request's own values. In the claim statement on PostgreSQL
# they are literals, written into its text once, so only the request's values travel as parameters.
_FRESH_CONSTANTS: dict[str, Any] = {
    "state": State.IN_PROGRESS,
    "attempts": 1,
    "response_status": None,
    "response_headers": [],
    "response_body": None,
    "response_size": None,
    "replay_count": 0,
    "completed_at": None,
}


class KeyLocked(Exception):
    """A repeat waited ``waited`` seconds on the key of an attempt still running in its transaction."""

    def __init__(self, waited: float) -> None:
        super().__init__(f"the idempotency key stayed locked for {waited} s")
        self.waited = waited

    @property
    def retry_after(self) -> int:
        """Whole seconds (at least 1): the first attempt has run at least as long as this repeat waited,
        so by the same doubling estimate as :attr:`ClaimResult.retry_after` about as long remains."""
        return max(1, math.ceil(self.waited))


class LeaseLost(Exception):
    """Another attempt took this key over after the lease expired; this attempt's outcome must not count."""


class Outcome(enum.Enum):
    ACQUIRED = "acquired"  # this attempt owns the key and runs the operation
    COMPLETED = "completed"  # an earlier attempt finished: replay its outcome
    IN_FLIGHT = "in_flight"  # an earlier attempt holds a live lease
    MISMATCH = "mismatch"  # the key was used for a different request or arguments


@dataclasses.dataclass(frozen=True)
class Claim:
    """Ownership of one record by one attempt, proven by its ``owner`` token."""

    key: str
    owner: str
    using: str
    attempt: int = 1

    def step_key(self, step: str) -> str:
        """A key for one foreign side effect of this operation, the same in every attempt.

        Pass it to a payment provider or another API that deduplicates, so an attempt that takes over
        from a dead one does not repeat a call the dead one already made.
        """
        return derive_id(f"{NAMESPACE}.step", self.key, step)

    def complete(
        self,
        *,
        status: int | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | None = None,
        size: int | None = None,
    ) -> None:
        """Store the outcome; raises :class:`LeaseLost` if this attempt no longer owns the key."""
        updated = self._owned().update(**_completion(status, headers, body, size))
        if not updated:
            raise LeaseLost(f"idempotency key {self.key} was taken over by another attempt")

    def complete_and_commit(
        self, *, status: int | None, headers: Iterable[tuple[str, str]], body: bytes | None, size: int | None
    ) -> None:
        """:meth:`complete`, then ``COMMIT`` the transaction, in one round trip (PostgreSQL, outermost
        transaction only: the caller's ``atomic()`` then finds nothing left to commit).

        When the update matches no row the statement fails before the ``COMMIT`` (a division by zero),
        so nothing commits without its record; that raises :class:`LeaseLost`.
        """
        connection = connections[self.using]
        # The stored headers as their field sends them; the other values psycopg takes as they are.
        stored_headers = _HEADERS_FIELD.get_db_prep_save([list(pair) for pair in headers], connection)
        params = [status, stored_headers, body, size, timezone.now(), self.key, self.owner]
        try:
            with connection.cursor() as cursor:
                cursor.execute(_complete_and_commit_sql(self.using), params)
        except DataError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != _DIVISION_BY_ZERO:
                raise
            raise LeaseLost(f"idempotency key {self.key} was taken over by another attempt") from exc

    def release(self) -> bool:
        """Give the key up so a retry runs afresh; False if another attempt already took it over."""
        deleted, _ = self._owned().delete()
        return bool(deleted)

    def _owned(self) -> QuerySet[IdempotencyRecord]:
        return IdempotencyRecord.objects.using(self.using).filter(
            pk=self.key, owner=self.owner, state=State.IN_PROGRESS
        )


@dataclasses.dataclass(frozen=True)
class ClaimResult:
    outcome: Outcome
    claim: Claim | None = None
    record: IdempotencyRecord | None = None
    lease: float = 0.0

    @property
    def retry_after(self) -> int:
        """Whole seconds (at least 1) a repeat should wait for an in-flight attempt: as long again as it
        has run so far (an attempt that has run for t has, by a doubling estimate, about t left), never
        past the end of its lease, when another attempt may take over. A fast view so answers 1, not
        the whole lease."""
        lease = self.record.lease_expires_at if self.record is not None else None
        if lease is None:
            return 1
        remaining = (lease - timezone.now()).total_seconds()
        running = self.lease - remaining  # the lease was granted when the attempt started
        return max(1, math.ceil(min(remaining, running)))


class Replayed(NamedTuple):
    """What a replay reads of a completed record: the stored response, and what its trace event names.
    Fewer columns than the whole record, and no model instance: a replay costs no more than the view
    it replaces."""

    key: str
    operation: str
    client_key: str
    correlation_id: str
    response_status: int | None
    response_headers: list[list[str]]
    response_body: bytes | memoryview | None
    response_size: int | None
    replay_count: int


_REPLAYED_FIELDS = tuple(concrete_field(IdempotencyRecord, name) for name in Replayed._fields)


def claim(
    *,
    scope: str,
    operation: str,
    client_key: str,
    fingerprint: str,
    lease: float,
    ttl: float,
    using: str,
    correlation_id: str = "",
    method: str = "",
    path: str = "",
    lock_timeout: float | None = None,
) -> ClaimResult:
    """Try to own the record for (scope, operation, client key); never check-then-insert.

    With ``lock_timeout`` (PostgreSQL, inside the caller's open transaction) the claim commits with that
    transaction and a repeat waits on it up to ``lock_timeout`` seconds, then raises :class:`KeyLocked`.
    """
    key = record_key(scope, operation, client_key)
    owner = new_id()
    manager = IdempotencyRecord._default_manager.db_manager(using)
    read_first = connections[using].vendor in _SINGLE_WRITER_VENDORS
    record = None
    with _bounded_wait(lock_timeout):
        for _ in range(_CLAIM_ROUNDS):
            now = timezone.now()
            fresh = {
                "key": key,
                "scope": scope,
                "operation": operation,
                "client_key": client_key,
                "fingerprint": fingerprint,
                "method": method,
                "path": path,
                "owner": owner,
                "lease_expires_at": now + timedelta(seconds=lease),
                "correlation_id": correlation_id,
                "created_at": now,
                "expires_at": now + timedelta(seconds=ttl),
                **_FRESH_CONSTANTS,
            }
            record = manager.filter(pk=key).first() if read_first else None
            if record is None:
                if _insert(using, fresh, lock_timeout):
                    return ClaimResult(Outcome.ACQUIRED, Claim(key, owner, using))
                record, replayed = _read_conflicting(using, key, fingerprint, now)
                if replayed:
                    return ClaimResult(Outcome.COMPLETED, record=record)
                if record is None:
                    continue
            if record.expires_at <= now and _reclaimable(record, now):
                # An expired record is as good as absent: the key starts over, whatever it was used for.
                del fresh["key"]
                if manager.filter(
                    _reclaimable_q(now), pk=key, owner=record.owner, expires_at__lte=now
                ).update(**fresh):
                    _restore_lock_timeout(using, lock_timeout)
                    return ClaimResult(Outcome.ACQUIRED, Claim(key, owner, using))
                continue
            if record.fingerprint != fingerprint:
                return ClaimResult(Outcome.MISMATCH, record=record)
            if record.state == State.COMPLETED:
                # Counted here, in the claim, so every caller (HTTP, tasks) counts the same way.
                completed = _replay(using, key, fingerprint, now)
                if completed is None:
                    continue  # changed since it was read: purged, or reset by a claim that found it expired
                return ClaimResult(Outcome.COMPLETED, record=completed)
            if not _reclaimable(record, now):
                return ClaimResult(Outcome.IN_FLIGHT, record=record, lease=lease)
            taken = manager.filter(
                pk=key, state=State.IN_PROGRESS, owner=record.owner, lease_expires_at__lte=now
            ).update(owner=owner, lease_expires_at=fresh["lease_expires_at"], attempts=F("attempts") + 1)
            if taken:
                _restore_lock_timeout(using, lock_timeout)
                return ClaimResult(Outcome.ACQUIRED, Claim(key, owner, using, attempt=record.attempts + 1))
        return ClaimResult(Outcome.IN_FLIGHT, record=record, lease=lease)


def replay_committed(
    *, scope: str, operation: str, client_key: str, fingerprint: str, using: str
) -> Replayed | None:
    """The stored outcome for this key and fingerprint, its replay counted, or None: one statement,
    outside any transaction, so a repeat of a finished request costs no more than that.

    Outside a transaction on PostgreSQL the count commits asynchronously (``synchronous_commit`` off for
    that statement alone): a replay then waits for no disk flush, and a database crash may lose the last
    fraction of a second of counts, never a record.
    """
    key = record_key(scope, operation, client_key)
    connection = connections[using]
    # In autocommit the statement is its own transaction; the caller's transaction keeps its durability.
    asynchronous = connection.vendor in _WRITING_CTE_VENDORS and connection.get_autocommit()
    sql = _replay_sql(using, asynchronous=asynchronous, brief=True)
    with connection.cursor() as cursor:
        cursor.execute(sql, [key, State.COMPLETED.value, fingerprint, timezone.now()])
        row = cursor.fetchone()
    if row is None:
        return None
    return Replayed._make(_converted(using, _REPLAYED_FIELDS, row[:-1] if asynchronous else row))


def record_replay(record: IdempotencyRecord | Replayed, **attributes: Any) -> None:
    """Record an ``idempotent.replay`` trace event for a replay of ``record``'s outcome (already counted
    by :func:`claim`) in the current transaction."""
    recorder.record(
        "idempotent.replay",
        name=record.operation,
        status="" if record.response_status is None else str(record.response_status),
        attributes={
            "key": record.key,
            "client_key": record.client_key,
            "first_correlation_id": record.correlation_id,
            "replay": record.replay_count,
            **attributes,
        },
    )


def purge_expired(using: str, batch_size: int, now: datetime | None = None) -> int:
    """Delete expired records, ``batch_size`` per statement; returns how many were deleted.

    Records still held by a live attempt are kept until their lease ends. Short statements keep row
    locks brief, so purging never stalls claims.
    """
    now = now or timezone.now()
    manager = IdempotencyRecord.objects.using(using)
    expired = manager.filter(_reclaimable_q(now), expires_at__lte=now)
    total = 0
    while True:
        keys = list(expired.values_list("pk", flat=True)[:batch_size])
        if not keys:
            return total
        deleted, _ = expired.filter(pk__in=keys).delete()
        total += deleted


_active: contextvars.ContextVar[Claim | None] = contextvars.ContextVar(
    "tracing_app.idempotency.active", default=None
)


def active_claim() -> Claim | None:
    """The claim of the idempotent view or task running now, or None (e.g. for ``step_key``)."""
    return _active.get()


@contextmanager
def activated(claim: Claim) -> Iterator[Claim]:
    token = _active.set(claim)
    try:
        yield claim
    finally:
        _active.reset(token)


@functools.cache
def _complete_and_commit_sql(using: str) -> str:
    """:meth:`Claim.complete_and_commit`'s statement, written once per database: compiling the
    ``UPDATE`` through the ORM on every request would cost more than its round trip. The states and the
    ended lease are literals; the parameters are the outcome, the completion time, the key and owner."""
    connection = connections[using]
    ops = connection.ops

    def quoted(name: str) -> str:
        return ops.quote_name(column(IdempotencyRecord, name))

    completed, in_progress, no_lease = _literals(
        connection, [("state", State.COMPLETED), ("state", State.IN_PROGRESS), ("lease_expires_at", None)]
    )
    outcome = ("response_status", "response_headers", "response_body", "response_size", "completed_at")
    assignments = ", ".join(
        [f"{quoted('state')} = {completed}", f"{quoted('lease_expires_at')} = {no_lease}"]
        + [f"{quoted(name)} = %s" for name in outcome]
    )
    # Only quoted identifiers from the model and literals of its fields are interpolated; every value
    # is a parameter.
    return (
        f"WITH done AS (UPDATE {ops.quote_name(IdempotencyRecord._meta.db_table)} SET {assignments} "  # noqa: S608
        f"WHERE {quoted('pk')} = %s AND {quoted('owner')} = %s AND {quoted('state')} = {in_progress} "
        f"RETURNING {quoted('pk')}) SELECT 1 / count(*) FROM done; COMMIT"
    )


def _completion(
    status: int | None, headers: Iterable[tuple[str, str]], body: bytes | None, size: int | None
) -> dict[str, Any]:
    return {
        "state": State.COMPLETED,
        "response_status": status,
        "response_headers": [list(pair) for pair in headers],
        "response_body": body,
        "response_size": size,
        "completed_at": timezone.now(),
        "lease_expires_at": None,
    }


@contextmanager
def _bounded_wait(lock_timeout: float | None) -> Iterator[None]:
    """Turns PostgreSQL's lock timeout on a claim into :class:`KeyLocked`."""
    try:
        yield
    except OperationalError as exc:
        cause = exc.__cause__
        code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if lock_timeout is None or code != _LOCK_NOT_AVAILABLE:
            raise
        raise KeyLocked(lock_timeout) from exc


def _reclaimable(record: IdempotencyRecord, now: datetime) -> bool:
    return record.state == State.COMPLETED or (
        record.lease_expires_at is not None and record.lease_expires_at <= now
    )


def _reclaimable_q(now: datetime) -> Q:
    return Q(state=State.COMPLETED) | Q(lease_expires_at__lte=now)


def _insert(using: str, values: dict[str, Any], lock_timeout: float | None = None) -> bool:
    """One ``INSERT`` that does nothing on a key conflict; True if this call inserted the row.

    On PostgreSQL the columns every fresh claim sets alike (:data:`_FRESH_CONSTANTS`) are literals in the
    statement's text and the request's own values (strings, aware datetimes) go to psycopg as they are:
    preparing each through its field on every request would cost more than the round trip. With
    ``lock_timeout`` the same statement bounds its wait on a concurrent attempt's uncommitted key, and
    restores the previous lock timeout once it inserted: its ``SELECT`` source sets the timeout before
    the row is inserted, its ``RETURNING`` puts the old one back after.
    """
    connection = connections[using]
    if connection.vendor not in _WRITING_CTE_VENDORS:
        params = [
            concrete_field(IdempotencyRecord, name).get_db_prep_save(value, connection)
            for name, value in values.items()
        ]
        sql = _insert_sql(using, tuple(values))
    else:
        own = {name: value for name, value in values.items() if name not in _FRESH_CONSTANTS}
        params = list(own.values())
        if lock_timeout is not None:
            params = [_SAVED_LOCK_TIMEOUT, _milliseconds(lock_timeout), *params, _SAVED_LOCK_TIMEOUT]
        sql = _claim_sql(using, tuple(own), bounded=lock_timeout is not None)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


@functools.cache
def _insert_sql(using: str, names: tuple[str, ...]) -> str:
    """:func:`_insert`'s statement for these columns, written once per database."""
    ops = connections[using].ops
    table, columns, placeholders, suffix = _insert_parts(ops, names)
    insert = ops.insert_statement(on_conflict=OnConflict.IGNORE)
    return f"{insert} {table} ({columns}) VALUES ({placeholders}) {suffix}"


@functools.cache
def _claim_sql(using: str, names: tuple[str, ...], *, bounded: bool) -> str:
    """:func:`_insert`'s statement on PostgreSQL, written once per database and kind: ``names`` are
    parameters, :data:`_FRESH_CONSTANTS` literals."""
    connection = connections[using]
    ops = connection.ops
    table, columns, _, suffix = _insert_parts(ops, (*names, *_FRESH_CONSTANTS))
    values = ", ".join(["%s"] * len(names) + _literals(connection, _FRESH_CONSTANTS.items()))
    if not bounded:
        return f"INSERT INTO {table} ({columns}) VALUES ({values}) {suffix}"  # noqa: S608
    # Only quoted identifiers and literals of the model's fields are interpolated; every value is a
    # parameter. WHERE TRUE keeps ON CONFLICT from parsing as a join condition.
    return (
        "WITH timeout AS (SELECT set_config(%s, current_setting('lock_timeout'), true), "  # noqa: S608
        f"set_config('lock_timeout', %s, true)) INSERT INTO {table} ({columns}) "
        f"SELECT {values} FROM timeout WHERE TRUE {suffix} "
        "RETURNING set_config('lock_timeout', current_setting(%s), true)"
    )


def _insert_parts(ops: Any, names: tuple[str, ...]) -> tuple[str, str, str, str]:
    """An ``INSERT ... ON CONFLICT DO NOTHING``'s table, columns, placeholders and conflict clause."""
    fields = [concrete_field(IdempotencyRecord, name) for name in names]
    return (
        ops.quote_name(IdempotencyRecord._meta.db_table),
        ", ".join(ops.quote_name(field.column) for field in fields),
        ", ".join(["%s"] * len(fields)),
        ops.on_conflict_suffix_sql(fields, OnConflict.IGNORE, None, None),
    )


def _restore_lock_timeout(using: str, lock_timeout: float | None) -> None:
    """Give the operation back the session's lock timeout after a claim that won by an ``UPDATE``."""
    if lock_timeout is not None:
        with connections[using].cursor() as cursor:
            cursor.execute(
                "SELECT set_config('lock_timeout', current_setting(%s), true)", [_SAVED_LOCK_TIMEOUT]
            )


def _milliseconds(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def _literals(connection: Any, values: Iterable[tuple[str, Any]]) -> list[str]:
    """(field name, value) pairs as SQL literals, each value prepared by its field as the ORM would send
    it and cast to its column's type (a driver may render JSON without one, and an ``INSERT ... SELECT``
    would then read it as text); ``%`` doubled, for a statement that still takes parameters."""
    literals = []
    for name, value in values:
        field = concrete_field(IdempotencyRecord, name)
        literal = connection.ops.compose_sql("%s", [field.get_db_prep_save(value, connection)])
        literals.append(f"CAST({literal} AS {field.db_type(connection)})".replace("%", "%%"))
    return literals


def _replay(using: str, key: str, fingerprint: str, now: datetime) -> IdempotencyRecord | None:
    """Count one replay of the record if it is completed, unexpired and has this fingerprint, and return
    it as counted: one ``UPDATE ... RETURNING``. None when the record is anything else, or gone."""
    sql, params = _replay_statement(using, key, fingerprint, now)
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else _record_from_row(using, row)


def _record_from_row(using: str, row: Iterable[Any]) -> IdempotencyRecord:
    """A record from its columns in model order. Read through a plain cursor, not a raw queryset: for a
    fresh key, whose claim statement returns such columns on every first request, the queryset's setup
    would cost more than the round trip."""
    return IdempotencyRecord.from_db(using, _ATTNAMES, _converted(using, _CONCRETE_FIELDS, row))


def _converted(using: str, fields: tuple[Any, ...], row: Iterable[Any]) -> list[Any]:
    """``row``'s values, read from the columns of ``fields``, as those fields hold them."""
    connection = connections[using]
    values = []
    for (field, converters), value in zip(_converters(using, fields), row, strict=True):
        for converter in converters:
            value = converter(value, field.cached_col, connection)
        values.append(value)
    return values


@functools.cache
def _converters(using: str, fields: tuple[Any, ...]) -> list[tuple[Any, list[Any]]]:
    """Each field and the database's converters for its column, looked up once per database."""
    connection = connections[using]
    return [(field, field.get_db_converters(connection)) for field in fields]


def _read_conflicting(
    using: str, key: str, fingerprint: str, now: datetime
) -> tuple[IdempotencyRecord | None, bool]:
    """The record a claim's ``INSERT`` lost to, and whether it was replayed (and counted) on the way.

    On PostgreSQL one statement does both: :func:`_replay`'s ``UPDATE``, and when that matched nothing,
    a read of the record as it is. A replay so takes two statements, the ``INSERT`` and this one, and an
    answer that is not a replay (409, 422) still writes nothing. Outside a transaction (lease mode) a
    replay's count commits asynchronously, as :func:`replay_committed`'s does. Elsewhere this is a plain
    read.
    """
    connection = connections[using]
    if connection.vendor not in _WRITING_CTE_VENDORS:
        return IdempotencyRecord._default_manager.db_manager(using).filter(pk=key).first(), False
    asynchronous = connection.get_autocommit()
    params = [*_replay_statement(using, key, fingerprint, now)[1], key]
    with connection.cursor() as cursor:
        cursor.execute(_read_conflicting_sql(using, asynchronous=asynchronous), params)
        row = cursor.fetchone()
    if row is None:
        return None, False
    replayed, *columns = row[:-1] if asynchronous else row
    return _record_from_row(using, columns), replayed


@functools.cache
def _read_conflicting_sql(using: str, *, asynchronous: bool = False) -> str:
    """:func:`_read_conflicting`'s statement on PostgreSQL, written once per database and kind; with
    ``asynchronous``, each branch ends with a column that is the replay's ``set_config`` or NULL."""
    ops = connections[using].ops
    columns = _columns(ops)
    # The outer query selects the replay's set_config, so it is computed for a replayed row.
    replayed, read = (f"{columns}, durability", f"{columns}, NULL") if asynchronous else (columns, columns)
    # Only quoted identifiers from the model are interpolated; every value is a parameter.
    return (
        f"WITH replayed AS ({_replay_sql(using, asynchronous=asynchronous)}) "  # noqa: S608
        f"SELECT TRUE, {replayed} FROM replayed "
        f"UNION ALL SELECT FALSE, {read} FROM {ops.quote_name(IdempotencyRecord._meta.db_table)} "
        f"WHERE {ops.quote_name(column(IdempotencyRecord, 'pk'))} = %s "
        "AND NOT EXISTS (SELECT 1 FROM replayed)"
    )


def _replay_statement(using: str, key: str, fingerprint: str, now: datetime) -> tuple[str, list[Any]]:
    return _replay_sql(using), [key, State.COMPLETED.value, fingerprint, now]


@functools.cache
def _replay_sql(using: str, *, asynchronous: bool = False, brief: bool = False) -> str:
    """The replay's ``UPDATE ... RETURNING`` (parameters: key, completed state, fingerprint, now), under
    the conditions in which claim() replays a record it read: not expired (an expired record starts
    over), the same fingerprint (else 422), completed (else 409 or a takeover). It returns the record's
    columns in model order, or with ``brief`` those of :class:`Replayed`. Written once per database and
    kind.

    ``asynchronous`` (for a statement that is its own transaction) adds a last returned column that turns
    ``synchronous_commit`` off until that transaction's commit: ``RETURNING`` is computed only for a row
    the statement changed, so a statement that matched nothing sets nothing, and it costs the planner
    less than a joined ``SELECT set_config(...)`` would.
    """
    ops = connections[using].ops

    def quoted(name: str) -> str:
        return ops.quote_name(column(IdempotencyRecord, name))

    count = quoted("replay_count")
    returned = ", ".join(quoted(name) for name in Replayed._fields) if brief else _columns(ops)
    durability = ", set_config('synchronous_commit', 'off', true) AS durability" if asynchronous else ""
    # Only quoted identifiers from the model are interpolated; every value is a parameter.
    return (
        f"UPDATE {ops.quote_name(IdempotencyRecord._meta.db_table)} SET {count} = {count} + 1 "  # noqa: S608
        f"WHERE {quoted('key')} = %s AND {quoted('state')} = %s AND {quoted('fingerprint')} = %s "
        f"AND {quoted('expires_at')} > %s RETURNING {returned}{durability}"
    )


def _columns(ops: Any) -> str:
    return ", ".join(_quoted_columns(ops))


def _quoted_columns(ops: Any) -> list[str]:
    return [ops.quote_name(field.column) for field in _CONCRETE_FIELDS]
