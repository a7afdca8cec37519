"""``@idempotent``: guard a view's unsafe methods without changing its class.

It goes on a plain Django view, on a DRF view (``@idempotent`` above ``@api_view``, or
``idempotent(MyAPIView.as_view())`` / ``idempotent(MyViewSet.as_view({...}))`` in a URLconf), or on one
ViewSet action (a method taking ``self``, with or without ``@action``). What a guarded request gets is
described in :mod:`tracing_app.idempotency.guard`. Authentication, permission and throttling failures
happen before the claim and are never stored: DRF views claim after ``APIView.initial()``; with plain
Django views, put access decorators outside ``@idempotent``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase

from tracing_app.idempotency.atomic_requests import NonAtomicAliases, as_atomic_requests_would
from tracing_app.idempotency.drf import IdempotentAPIViewMixin
from tracing_app.idempotency.guard import Guard
from tracing_app.idempotency.options import IdempotencyOptions, View


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
        guarded_class: Any = type(api_view_class.__name__, bases, {"idempotency": options})
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
            with as_atomic_requests_would():
                return view(request, *args, **kwargs)
        with guard:
            early = guard.begin(request)
            if early is not None:
                return early
            return guard.finish(view(request, *args, **kwargs))

    guarded._non_atomic_requests = NonAtomicAliases(getattr(view, "_non_atomic_requests", ()))  # type: ignore[attr-defined]
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
