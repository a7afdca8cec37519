"""Idempotent HTTP views, following the IETF ``Idempotency-Key`` header draft and Stripe's behaviour.

Three ways to guard a view's unsafe methods (``IDEMPOTENCY_METHODS``):

- ``@idempotent`` on a plain Django view, on a DRF view (``@idempotent`` above ``@api_view``, or
  ``idempotent(MyAPIView.as_view())`` / ``idempotent(MyViewSet.as_view({...}))`` in a URLconf), or on
  one ViewSet action (a method taking ``self``, with or without ``@action``);
- :class:`IdempotentAPIViewMixin` first in a DRF view's bases: APIView, generic views, ViewSets (every
  unsafe action a router maps);
- :class:`IdempotencyMiddleware` plus the ``IDEMPOTENCY_VIEWS`` setting (URL names, a router's included,
  or dotted paths), with no code change in the view.

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
the request's transaction); this module's own transaction takes its place, and requests it does not
guard (safe methods, no key) still run in one.

Authentication, permission and throttling failures happen before the claim and are never stored: DRF
views claim after ``APIView.initial()``; with plain Django views, put access decorators outside
``@idempotent``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from contextlib import nullcontext, suppress
from types import TracebackType
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.http.request import RawPostDataException

from tracing_app.conf import app_settings, meta_key
from tracing_app.context import current, get_correlation_id
from tracing_app.envelope import error_body
from tracing_app.idempotency import store
from tracing_app.idempotency.keys import InvalidKey, parse_client_key, principal_scope, request_fingerprint
from tracing_app.sampling import is_sampled

REPLAYED_HEADER = "Idempotent-Replayed"
MODES = ("transaction", "lease")
_ONE_COMMIT_VENDORS = frozenset({"postgresql"})

View = Callable[..., HttpResponseBase]


@dataclasses.dataclass(frozen=True)
class IdempotencyOptions:
    """How one view is guarded; ``None`` means "use the setting".

    ``operation`` names the key space: by default every view shares "http", so a key reused on another
    endpoint is refused (422) as Stripe does. A view with its own ``operation`` has keys of its own.
    """

    required: bool | None = None
    operation: str = "http"
    methods: tuple[str, ...] | None = None
    lease: float | None = None
    ttl: float | None = None
    mode: str | None = None

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in MODES:
            raise ImproperlyConfigured(f"idempotent(mode={self.mode!r}): use one of {', '.join(MODES)}.")

    def guards(self, method: str | None) -> bool:
        return method in (self.methods or app_settings.IDEMPOTENCY_METHODS)

    def one_commit(self, using: str) -> bool:
        """Whether the claim commits with the view's writes (see the module's docstring)."""
        return (
            (self.mode or app_settings.IDEMPOTENCY_MODE) == "transaction"
            and connections[using].vendor in _ONE_COMMIT_VENDORS
            and not connections.settings[using].get("ATOMIC_REQUESTS")
        )


def idempotent(
    view: View | None = None,
    *,
    required: bool | None = None,
    operation: str = "http",
    methods: Iterable[str] | None = None,
    lease: float | None = None,
    ttl: float | None = None,
    mode: str | None = None,
) -> Any:
    """Make a view's unsafe methods idempotent; use as ``@idempotent`` or ``@idempotent(required=True)``.

    ``mode="lease"`` keeps a view whose work lies outside the database on the lease path.
    """
    options = IdempotencyOptions(
        required=required,
        operation=operation,
        methods=tuple(methods) if methods is not None else None,
        lease=lease,
        ttl=ttl,
        mode=mode,
    )
    if view is not None:
        return guard_view(view, options)
    return functools.partial(guard_view, options=options)


def guard_view(view: View, options: IdempotencyOptions) -> View:
    """``view`` guarded with ``options``: a DRF view (a ViewSet's too) gets the mixin, a ViewSet action
    (a method taking ``self``) a guard of its own, a Django view a wrapper."""
    api_view_class = getattr(view, "cls", None)
    if api_view_class is not None and hasattr(api_view_class, "initial"):
        if issubclass(api_view_class, IdempotentAPIViewMixin):
            bases: tuple[type, ...] = (api_view_class,)
        else:
            bases = (IdempotentAPIViewMixin, api_view_class)
        guarded_class = type(api_view_class.__name__, bases, {"idempotency": options})
        # A router's ViewSet view carries its method -> action map, which as_view() needs again.
        actions = getattr(view, "actions", None)
        initkwargs = getattr(view, "initkwargs", {})
        if actions is not None:
            return guarded_class.as_view(actions, **initkwargs)
        return guarded_class.as_view(**initkwargs)
    unguardable = why_unguardable(view)
    if unguardable:
        raise ImproperlyConfigured(f"idempotent() cannot guard {view.__qualname__}: {unguardable}.")
    if _is_method(view):
        return _guard_action(view, options)

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        guard = Guard(options, request)
        if not guard.applies:
            with _as_atomic_requests_would():
                return view(request, *args, **kwargs)
        with guard:
            early = guard.begin(request)
            if early is not None:
                return early
            return guard.finish(view(request, *args, **kwargs))

    guarded._non_atomic_requests = _NonAtomicAliases(getattr(view, "_non_atomic_requests", ()))  # type: ignore[attr-defined]
    guarded.idempotency = options  # type: ignore[attr-defined]
    return guarded


def why_unguardable(view: Any) -> str:
    """Why ``view`` cannot be guarded, or "" when it can."""
    if iscoroutinefunction(view):
        return "async views are not supported"
    view_class = getattr(view, "view_class", None)
    if view_class is not None and getattr(view_class, "view_is_async", False):
        return "async views are not supported"
    return ""


def _is_method(view: Any) -> bool:
    code = getattr(view, "__code__", None)
    return code is not None and code.co_argcount > 0 and code.co_varnames[0] == "self"


def _guard_action(action: Callable[..., Any], options: IdempotencyOptions) -> Callable[..., Any]:
    """A ViewSet action (or APIView handler) guarded on its own; ``@action`` may sit above or below.

    In a view with :class:`IdempotentAPIViewMixin` the mixin guards the request with these options and
    this wrapper only passes through. Elsewhere it guards the call itself, after DRF's ``initial()``
    (authentication, permissions, throttling) has run, as the mixin would.
    """

    @functools.wraps(action)
    def guarded(self: Any, request: Any, *args: Any, **kwargs: Any) -> HttpResponseBase:
        guard = Guard(options, request)
        if getattr(self, "_idempotency_guard", None) is not None or not guard.applies:
            return action(self, request, *args, **kwargs)
        with guard:
            early = guard.begin(request)
            if early is not None:
                return early
            try:
                response = action(self, request, *args, **kwargs)
            except Exception as exc:  # answered as DRF's dispatch() would, so 4xx outcomes are stored
                response = self.handle_exception(exc)
            return guard.finish(self.finalize_response(request, response, *args, **kwargs))

    guarded.idempotency = options  # type: ignore[attr-defined]
    return guarded


class IdempotentAPIViewMixin:
    """Put first in a DRF view's bases to make its unsafe methods idempotent.

    The claim runs after ``initial()``, so the scope is the principal DRF authenticated and
    authentication, permission and throttling failures are never stored. Configure with
    ``idempotency = IdempotencyOptions(...)``.
    """

    idempotency = IdempotencyOptions()

    @classmethod
    def as_view(cls, *args: Any, **initkwargs: Any) -> View:
        # ViewSets take their method -> action map positionally.
        view = super().as_view(*args, **initkwargs)  # type: ignore[misc]
        view._non_atomic_requests = _NonAtomicAliases(getattr(view, "_non_atomic_requests", ()))
        return view

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        guard = Guard(self._idempotency_options(request.method), request)
        if not guard.applies:
            with _as_atomic_requests_would():
                return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        with guard:
            self._idempotency_guard = guard
            return guard.finish(super().dispatch(request, *args, **kwargs))  # type: ignore[misc]

    def _idempotency_options(self, method: str | None) -> IdempotencyOptions:
        """The handler's own options (``@idempotent`` on an action) or the view's."""
        name = (method or "").lower()
        action_map = getattr(self, "action_map", None)
        if action_map is not None:
            name = action_map.get(name, name)
        handler = getattr(self, name, None)
        return getattr(handler, "idempotency", None) or self.idempotency

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        guard = getattr(self, "_idempotency_guard", None)
        if guard is not None:
            early = guard.begin(request)
            if early is not None:
                raise _Answered(early)

    def handle_exception(self, exc: Exception) -> HttpResponseBase:
        if isinstance(exc, _Answered):
            return exc.response
        return super().handle_exception(exc)  # type: ignore[misc]


class IdempotencyMiddleware:
    """Guards the views named in ``IDEMPOTENCY_VIEWS`` without touching their code.

    Put it last in ``MIDDLEWARE``: it answers from ``process_view``, so middleware after it would not see
    the view. Views already guarded by the decorator or the mixin are left to them.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: View, view_args: tuple[Any, ...], view_kwargs: dict[str, Any]
    ) -> HttpResponseBase | None:
        views = app_settings.IDEMPOTENCY_VIEWS
        if not views or hasattr(view_func, "idempotency"):
            return None
        view_class = getattr(view_func, "cls", None)
        if view_class is not None and issubclass(view_class, IdempotentAPIViewMixin):
            return None
        options = _configured_options(views, request, view_func)
        if options is None or not options.guards(request.method):
            return None
        return _guarded_view(view_func, options)(request, *view_args, **view_kwargs)


class Guard:
    """One request through the idempotency layer; a context manager around running the view.

    ``begin()`` claims the key (or answers: replay, 400, 409, 422), then opens the transaction the view
    runs in; ``finish()`` stores the response inside it; leaving the ``with`` commits or rolls back and
    releases the key when the outcome is not kept.
    """

    def __init__(self, options: IdempotencyOptions, request: HttpRequest) -> None:
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
        self._atomic: transaction.Atomic | None = None
        self._activation: Any = None
        self._release = False
        self._complete_after: dict[str, Any] | None = None

    def __enter__(self) -> Guard:
        return self

    def begin(self, request: Any) -> HttpResponseBase | None:
        """Claim the key; returns the response to send instead of running the view, or None to run it."""
        header = app_settings.IDEMPOTENCY_HEADER
        if self.raw_key is None:
            return _error(
                400,
                "idempotency_key_missing",
                f"This request must carry an {header} header: a unique value (such as a UUID) per "
                "operation, sent again unchanged when the request is retried.",
            )
        try:
            client_key = parse_client_key(self.raw_key)
        except InvalidKey as exc:
            return _error(400, "idempotency_key_invalid", str(exc))
        scope = principal_scope(request)
        if scope is None:
            return _error(
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
            replayed = store.replay_committed(
                scope=scope,
                operation=options.operation,
                client_key=client_key,
                fingerprint=fingerprint,
                using=using,
            )
            if replayed is not None:
                return _replay(http_request, replayed)
            self._atomic = transaction.atomic(using=using)
            self._atomic.__enter__()
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
            self._end_transaction(exc)
            return _in_flight(exc.retry_after)
        except BaseException as exc:
            self._end_transaction(exc)
            raise
        if result.outcome is store.Outcome.ACQUIRED:
            self.claim = result.claim
            if self._atomic is None:
                self._atomic = transaction.atomic(using=using)
                self._atomic.__enter__()
            self._activation = store.activated(self.claim)
            self._activation.__enter__()
            return None
        # Commits what the answer wrote (a replay's count) in "transaction" mode.
        self._end_transaction(None)
        if result.outcome is store.Outcome.COMPLETED:
            return _replay(http_request, result.record)
        if result.outcome is store.Outcome.MISMATCH:
            return _error(
                422,
                "idempotency_key_reused",
                f"This {header} was already used for a different request (method, path or body). "
                "Use a new key for a new operation.",
            )
        return _in_flight(result.retry_after)

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
        outcome = _outcome(response)
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
            return _in_flight(1)
        return response

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        claim = self.claim
        if claim is None or self._atomic is None:
            return
        self._activation.__exit__(exc_type, exc, traceback)
        if self.one_commit:
            # The claim commits or rolls back with the view's writes: nothing is left to release.
            self._atomic.__exit__(exc_type, exc, traceback)
            return
        try:
            self._atomic.__exit__(exc_type, exc, traceback)
        except BaseException:
            claim.release()
            raise
        if exc_type is not None or self._release:
            claim.release()
        elif self._complete_after is not None:
            # The view's writes were rolled back, so if another attempt took over, its outcome stands.
            with suppress(store.LeaseLost):
                claim.complete(**self._complete_after)

    def _end_transaction(self, exc: BaseException | None) -> None:
        """Close the transaction a "transaction" mode claim opened without running the view: roll back
        when ``exc`` is given, else commit."""
        atomic, self._atomic = self._atomic, None
        if atomic is not None:
            atomic.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)


class _Answered(Exception):
    """Carries an early response out of DRF's ``initial()`` to ``handle_exception()``."""

    def __init__(self, response: HttpResponseBase) -> None:
        super().__init__(response.status_code)
        self.response = response


class _NonAtomicAliases:
    """Django asks ``alias in view._non_atomic_requests``; the records' database is always in it.

    Answered from the settings of the moment, so ``override_settings`` of ``IDEMPOTENCY_DATABASE``
    applies to views decorated at import time.
    """

    def __init__(self, others: Iterable[str]) -> None:
        self.others = set(others)

    def __contains__(self, alias: object) -> bool:
        return alias == app_settings.IDEMPOTENCY_DATABASE or alias in self.others

    def add(self, alias: str) -> None:
        self.others.add(alias)


def _as_atomic_requests_would() -> Any:
    """The transaction ``ATOMIC_REQUESTS`` would have opened for a request the guard lets through."""
    using = app_settings.IDEMPOTENCY_DATABASE
    if connections.settings[using].get("ATOMIC_REQUESTS"):
        return transaction.atomic(using=using)
    return nullcontext()


@functools.lru_cache(maxsize=256)
def _guarded_view(view: View, options: IdempotencyOptions) -> View:
    return guard_view(view, options)


def _configured_options(views: Any, request: HttpRequest, view: View) -> IdempotencyOptions | None:
    match = request.resolver_match
    view_class = getattr(view, "view_class", None) or getattr(view, "cls", None) or view
    names = (
        match.view_name if match else None,
        match.url_name if match else None,
        f"{view_class.__module__}.{view_class.__qualname__}",
    )
    for name in names:
        if name and name in views:
            settings_for_view = views[name] if isinstance(views, dict) else {}
            return _options_from_setting(tuple(sorted((settings_for_view or {}).items())))
    return None


@functools.lru_cache(maxsize=256)
def _options_from_setting(items: tuple[tuple[str, Any], ...]) -> IdempotencyOptions:
    values = dict(items)
    if "methods" in values:
        values["methods"] = tuple(values["methods"])
    return IdempotencyOptions(**values)


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


def _outcome(response: HttpResponseBase) -> dict[str, Any]:
    allowed = {name.lower() for name in app_settings.IDEMPOTENCY_REPLAY_HEADERS} - {"set-cookie"}
    headers = [(name, value) for name, value in response.items() if name.lower() in allowed]
    if response.streaming:
        return {"status": response.status_code, "headers": headers, "body": None, "size": None}
    body = response.content  # type: ignore[attr-defined]
    kept = body if len(body) <= app_settings.IDEMPOTENCY_MAX_RESPONSE_BYTES else None
    return {"status": response.status_code, "headers": headers, "body": kept, "size": len(body)}


def _replay(request: HttpRequest, record: Any) -> HttpResponseBase:
    if record.response_body is None:
        size = "streamed" if record.response_size is None else f"{record.response_size} bytes"
        return _error(
            409,
            "idempotency_response_not_stored",
            f"The request with this {app_settings.IDEMPOTENCY_HEADER} already completed with status "
            f"{record.response_status}, but its response ({size}) was not kept for replay. It will not "
            "run again; look the result up instead of retrying.",
            {"status": record.response_status, "correlation_id": record.correlation_id or None},
        )
    response = HttpResponse(bytes(record.response_body), status=record.response_status)
    del response["Content-Type"]
    for name, value in record.response_headers:
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    retry_correlation_id = get_correlation_id()
    if record.correlation_id:
        _join_original_transaction(request, response, record.correlation_id)
    store.record_replay(record, retry_correlation_id=retry_correlation_id)
    return response


def _join_original_transaction(request: HttpRequest, response: HttpResponse, correlation_id: str) -> None:
    """A replay is a retry of the first request, so it joins that transaction: the correlation ID it
    answers with (header, logs from here on, events) is the first attempt's; its hop ID stays its own."""
    ctx = current()
    if ctx is not None:
        ctx.correlation_id = correlation_id
        ctx.sampled = is_sampled(correlation_id)
    request.correlation_id = correlation_id  # type: ignore[attr-defined]
    response[app_settings.HEADER] = correlation_id


def _in_flight(retry_after: int) -> HttpResponse:
    response = _error(
        409,
        "idempotency_request_in_progress",
        f"A request with this {app_settings.IDEMPOTENCY_HEADER} is still being processed. Retry after "
        f"{retry_after} s to get its response.",
        {"retry_after": retry_after},
    )
    response["Retry-After"] = str(retry_after)
    return response


def _error(status: int, code: str, message: str, details: Any = None) -> HttpResponse:
    return JsonResponse(error_body(code, message, details), status=status)
