"""One request through the idempotency layer, following the IETF ``Idempotency-Key`` header draft and
Stripe's behaviour; the decorator, the DRF mixin and the middleware each run their view inside a
:class:`Guard`.

What a request gets:

=============================================  ==========================================================
first request with a key                       runs; its response is stored (see below)
repeat, same payload, first one completed      the stored response, body byte for byte, with
                                               ``Idempotent-Replayed: true`` and the first request's
                                               correlation ID in the correlation header
repeat, same payload, first one still running  409 ``idempotency_request_in_progress`` + ``Retry-After``
same key, different method, path or body       422 ``idempotency_key_reused``
no key where ``required``                      400 ``idempotency_key_missing`` (else the view just runs)
malformed or too long key                      400 ``idempotency_key_invalid``
anonymous, no session (and no custom scope)    400 ``idempotency_client_unknown``
=============================================  ==========================================================

Stored: 2xx, 3xx and 4xx responses the view returned (except ``IDEMPOTENCY_TRANSIENT_STATUSES``: 408,
409, 425, 429), with the headers in ``IDEMPOTENCY_REPLAY_HEADERS`` (never ``Set-Cookie``). Not stored:
5xx, transient 4xx and exceptions; the view's writes are rolled back and the key released, so the client
may retry. A body over ``IDEMPOTENCY_MAX_RESPONSE_BYTES`` (or a streamed one) is not stored, but the key
stays used: a repeat gets 409 ``idempotency_response_not_stored`` instead of running twice.

Transactions: the view runs inside ``transaction.atomic()`` on ``IDEMPOTENCY_DATABASE`` and the stored
response commits in that same transaction, so the view's writes and its record stand or fall together.
The claim commits in one of two modes (``IDEMPOTENCY_MODE``, or ``mode=`` per view):

- ``"transaction"`` (PostgreSQL): the claim is the transaction's first statement, so a request commits
  once. A repeat of a completed request is replayed before any transaction opens; a concurrent repeat
  waits on the first one's key (up to ``IDEMPOTENCY_LOCK_TIMEOUT``, then 409), then gets its replay, or
  runs if the first one failed, since a failure rolls the claim back with everything else.
- ``"lease"``: the claim commits on its own before the view, so a concurrent repeat gets a fast 409
  instead of waiting; a dead attempt's key is taken over when its lease ends. For views whose work lies
  outside the database (a payment gateway), where a repeat should not wait that long. Always used on
  other databases, and when ``ATOMIC_REQUESTS`` is set on ``IDEMPOTENCY_DATABASE`` (a DRF exception
  handler's rollback would take the claim with it).

Guarded views are excluded from ``ATOMIC_REQUESTS`` on that database (the lease claim must not run inside
the request's transaction); the guard's own transaction takes its place, and requests it does not
guard (safe methods, no key) still run in one.

Authentication, permission and throttling failures happen before the claim and are never stored: DRF
views claim after ``APIView.initial()``; with plain Django views, put access decorators outside
``@idempotent``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from contextlib import ExitStack, suppress
from types import TracebackType
from typing import Any

from django.db import connections, transaction
from django.http import HttpRequest, HttpResponseBase
from django.http.request import RawPostDataException

from tracing_app.conf import app_settings, meta_key
from tracing_app.context import get_correlation_id
from tracing_app.idempotency import store
from tracing_app.idempotency.keys import InvalidKey, parse_client_key, principal_scope, request_fingerprint
from tracing_app.idempotency.options import IdempotencyOptions
from tracing_app.idempotency.responses import error_response, in_flight, replay, stored_outcome


class Guard(ExitStack):
    """A context manager around running one view.

    ``begin()`` claims the key (or answers: replay, 400, 409, 422), then opens the transaction the view
    runs in; ``finish()`` stores the response inside it; leaving the ``with`` commits or rolls back what
    ``begin()`` opened, and releases the key when the outcome is not kept.
    """

    def __init__(self, options: IdempotencyOptions, request: HttpRequest) -> None:
        super().__init__()
        self.options = options
        self.raw_key: str | None = None
        self.applies = False
        if options.guards(request.method):
            self.raw_key = request.META.get(meta_key(app_settings.IDEMPOTENCY_HEADER))
            required = app_settings.IDEMPOTENCY_REQUIRED if options.required is None else options.required
            self.applies = self.raw_key is not None or required
        self.claim: store.Claim | None = None
        self.one_commit = False
        self._commits_itself = False
        self._in_transaction = False
        self._release = False
        self._complete_after: dict[str, Any] | None = None

    def begin(self, request: Any) -> HttpResponseBase | None:
        """Claim the key; returns the response to send instead of running the view, or None to run it."""
        header = app_settings.IDEMPOTENCY_HEADER
        if self.raw_key is None:
            return error_response(
                400,
                "idempotency_key_missing",
                f"This request must carry an {header} header: a unique value (such as a UUID) per "
                "operation, sent again unchanged when the request is retried.",
            )
        try:
            client_key = parse_client_key(self.raw_key)
        except InvalidKey as exc:
            return error_response(400, "idempotency_key_invalid", str(exc))
        scope = principal_scope(request)
        if scope is None:
            return error_response(
                400,
                "idempotency_client_unknown",
                f"An {header} is kept per client, and this anonymous request has no session to tell "
                "its client apart from others at the same address. Authenticate to use one.",
            )
        http_request: HttpRequest = getattr(request, "_request", request)
        using = app_settings.IDEMPOTENCY_DATABASE
        path = http_request.get_full_path()
        options = self.options
        fingerprint = request_fingerprint(http_request.method or "", path, _payload(http_request))
        self.one_commit = options.one_commit(using)
        # Only the outermost transaction may commit with the completion.
        self._commits_itself = self.one_commit and not connections[using].in_atomic_block
        if self.one_commit:
            # A repeat of a finished request (a client's retry) is answered by one statement, before any
            # transaction: cheaper than the view it replaces.
            replayed = store.replay_committed(
                scope=scope,
                operation=options.operation,
                client_key=client_key,
                fingerprint=fingerprint,
                using=using,
            )
            if replayed is not None:
                return replay(http_request, replayed)
            self._open_transaction(using)
        try:
            result = store.claim(
                scope=scope,
                operation=options.operation,
                client_key=client_key,
                fingerprint=fingerprint,
                lease=options.lease or app_settings.IDEMPOTENCY_LEASE,
                ttl=options.ttl or app_settings.IDEMPOTENCY_TTL,
                using=using,
                correlation_id=get_correlation_id() or "",
                method=http_request.method or "",
                path=path,
                lock_timeout=app_settings.IDEMPOTENCY_LOCK_TIMEOUT if self.one_commit else None,
            )
        except store.KeyLocked as exc:
            self._end_transaction(using, rollback=True)
            return in_flight(exc.retry_after)
        except BaseException:
            self._end_transaction(using, rollback=True)
            raise
        claim = result.claim
        if claim is not None:  # acquired: the view runs
            self.claim = claim
            if not self.one_commit:
                # Pushed before the transaction opens, so it runs once the transaction has ended.
                self.push(functools.partial(self._settle_lease, claim))
                self._open_transaction(using)
            self.enter_context(store.activated(claim))
            return None
        # Commits what the answer wrote (a replay's count) in "transaction" mode.
        self._end_transaction(using, rollback=False)
        if result.outcome is store.Outcome.COMPLETED:
            return replay(http_request, result.record)
        if result.outcome is store.Outcome.MISMATCH:
            return error_response(
                422,
                "idempotency_key_reused",
                f"This {header} was already used for a different request (method, path or body). "
                "Use a new key for a new operation.",
            )
        return in_flight(result.retry_after)

    def finish(self, response: HttpResponseBase) -> HttpResponseBase:
        """Store the view's response with the view's writes, or mark them for rollback."""
        claim = self.claim
        if claim is None:
            return response
        render = getattr(response, "render", None)
        if callable(render) and not getattr(response, "is_rendered", True):
            # Rendered here, inside the transaction, so the stored bytes are the bytes sent.
            response = render()
        status = response.status_code
        if status >= 500 or status in app_settings.IDEMPOTENCY_TRANSIENT_STATUSES:
            transaction.set_rollback(True, using=claim.using)
            self._release = True
            return response
        outcome = stored_outcome(response)
        if transaction.get_rollback(using=claim.using):
            if self.one_commit:
                return response  # the claim rolls back with the view's writes: a retry runs afresh
            # An exception handler (DRF under ATOMIC_REQUESTS) rolls the view's writes back; the 4xx it
            # answered is still the outcome, stored once the rollback is done.
            self._complete_after = outcome
            return response
        try:
            if self._commits_itself:
                claim.complete_and_commit(**outcome)
            else:
                claim.complete(**outcome)
        except store.LeaseLost:
            transaction.set_rollback(True, using=claim.using)
            return in_flight(1)
        return response

    def _open_transaction(self, using: str) -> None:
        self.enter_context(transaction.atomic(using=using))
        self._in_transaction = True

    def _end_transaction(self, using: str, *, rollback: bool) -> None:
        """Close the transaction a "transaction" mode claim opened, when the view is not going to run."""
        if not self._in_transaction:
            return
        if rollback:
            transaction.set_rollback(True, using=using)
        self._in_transaction = False
        self.close()

    def _settle_lease(
        self,
        claim: store.Claim,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Once a lease claim's transaction has ended: release the key unless the outcome is kept, or
        store the outcome an exception handler answered after rolling the view's writes back."""
        if exc_type is not None or self._release:
            claim.release()
        elif self._complete_after is not None:
            # The view's writes were rolled back, so if another attempt took over, its outcome stands.
            with suppress(store.LeaseLost):
                claim.complete(**self._complete_after)


def _payload(request: HttpRequest) -> bytes:
    """The raw body, or, when an earlier middleware already consumed a multipart stream (CSRF reads
    ``request.POST``), a canonical encoding of the parsed fields and files."""
    try:
        return request.body
    except RawPostDataException:
        files = [
            [field, upload.name, upload.size, _upload_digest(upload)]
            for field, uploads in sorted(request.FILES.lists())
            for upload in uploads
        ]
        return json.dumps([sorted(request.POST.lists()), files]).encode()


def _upload_digest(upload: Any) -> str:
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()
