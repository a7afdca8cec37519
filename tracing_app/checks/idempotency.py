"""Checks of the idempotency settings and guarded views (IDs tracing_app.E4xx / W4xx).

A misconfiguration here would not fail loudly at run time: views listed in ``IDEMPOTENCY_VIEWS`` without
the middleware simply run unguarded, and a client's retry runs twice.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.core.checks import Warning as CheckWarning
from django.urls import URLPattern, URLResolver, get_resolver

from tracing_app.checks.values import importable, known_database, positive_numbers
from tracing_app.conf import app_settings
from tracing_app.idempotency.decorator import why_unguardable
from tracing_app.idempotency.drf import IdempotentAPIViewMixin
from tracing_app.idempotency.options import MODES

MIDDLEWARE_PATH = "tracing_app.idempotency.middleware.IdempotencyMiddleware"

_POSITIVE = (
    "IDEMPOTENCY_KEY_MAX_LENGTH",
    "IDEMPOTENCY_TTL",
    "IDEMPOTENCY_LEASE",
    "IDEMPOTENCY_LOCK_TIMEOUT",
    "IDEMPOTENCY_TASK_LEASE",
    "IDEMPOTENCY_MAX_RESPONSE_BYTES",
    "IDEMPOTENCY_PURGE_BATCH_SIZE",
)


def check_idempotency_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages = known_database("IDEMPOTENCY_DATABASE", "tracing_app.E401")
    middleware = list(settings.MIDDLEWARE)
    if app_settings.IDEMPOTENCY_VIEWS and MIDDLEWARE_PATH not in middleware:
        messages.append(
            Error(
                "TRACING_APP['IDEMPOTENCY_VIEWS'] lists views, but IdempotencyMiddleware is not in "
                "MIDDLEWARE: those views run unguarded.",
                hint=f"Add {MIDDLEWARE_PATH!r} at the end of MIDDLEWARE.",
                id="tracing_app.E402",
            )
        )
    elif MIDDLEWARE_PATH in middleware and middleware[-1] != MIDDLEWARE_PATH:
        messages.append(
            CheckWarning(
                "IdempotencyMiddleware is not last in MIDDLEWARE: it answers guarded requests from "
                "process_view(), so the process_view() of middleware after it does not run for them.",
                hint="Move it to the end of MIDDLEWARE.",
                id="tracing_app.W403",
            )
        )
    messages += positive_numbers(_POSITIVE, "tracing_app.E404")
    if app_settings.IDEMPOTENCY_MODE not in MODES:
        messages.append(
            Error(
                f"TRACING_APP['IDEMPOTENCY_MODE'] is {app_settings.IDEMPOTENCY_MODE!r}; it must be one of "
                f"{', '.join(map(repr, MODES))}.",
                id="tracing_app.E409",
            )
        )
    scope = app_settings.IDEMPOTENCY_SCOPE
    if isinstance(scope, str):
        messages += importable("IDEMPOTENCY_SCOPE", scope, "tracing_app.E405")
    return messages


def check_guarded_views(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every ``IDEMPOTENCY_VIEWS`` entry names a view that can be guarded, and no guarded DRF view lets
    anonymous clients in while nothing tells them apart (their keys would be refused)."""
    if not getattr(settings, "ROOT_URLCONF", None):
        return []
    names: dict[str, Any] = {}
    for name, view in _routes(get_resolver().url_patterns, ""):
        names.setdefault(name, view)
        names.setdefault(_dotted(view), view)
    configured = app_settings.IDEMPOTENCY_VIEWS or ()
    messages: list[CheckMessage] = []
    for entry in configured:
        view = names.get(entry)
        if view is None:
            close = difflib.get_close_matches(entry, list(names), n=3, cutoff=0.6)
            messages.append(
                Error(
                    f"TRACING_APP['IDEMPOTENCY_VIEWS'] names {entry!r}, which is no URL name or view in "
                    "the URLconf: requests to the view meant run unguarded.",
                    hint=f"Did you mean {' or '.join(map(repr, close))}?" if close else None,
                    id="tracing_app.E406",
                )
            )
        elif reason := why_unguardable(view):
            messages.append(
                Error(
                    f"TRACING_APP['IDEMPOTENCY_VIEWS'] names {entry!r}, which cannot be guarded: {reason}.",
                    id="tracing_app.E407",
                )
            )
    if not app_settings.IDEMPOTENCY_SCOPE:
        listed = {id(names[entry]) for entry in configured if entry in names}
        seen: set[str] = set()  # one warning per view class, not per route of a router
        for name, view in names.items():
            if _dotted(view) in seen:
                continue
            seen.add(_dotted(view))
            if (id(view) in listed or _guarded_in_code(view)) and _open_to_anonymous(view):
                messages.append(
                    CheckWarning(
                        f"The guarded view {name!r} lets anonymous clients in: their Idempotency-Key is "
                        "kept per session, and refused (400 idempotency_client_unknown) without one.",
                        hint="Require authentication, or set TRACING_APP['IDEMPOTENCY_SCOPE'] to a "
                        "function telling clients apart (an API client ID, ...).",
                        id="tracing_app.W408",
                    )
                )
    return messages


def _routes(patterns: list[Any], namespace: str) -> Iterator[tuple[str, Any]]:
    """(name, view) for every named route, under its namespaced and its bare name."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _routes(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}{pattern.name}", pattern.callback
            if namespace:
                yield pattern.name, pattern.callback


def _dotted(view: Any) -> str:
    target = getattr(view, "view_class", None) or getattr(view, "cls", None) or view
    return f"{target.__module__}.{target.__qualname__}"


def _guarded_in_code(view: Any) -> bool:
    view_class = getattr(view, "cls", None)
    if hasattr(view, "idempotency") or (view_class and issubclass(view_class, IdempotentAPIViewMixin)):
        return True
    actions = getattr(view, "actions", None) or {}
    return any(hasattr(getattr(view_class, action, None), "idempotency") for action in actions.values())


def _open_to_anonymous(view: Any) -> bool:
    """A DRF view whose permissions are all ``AllowAny`` (or none); other views cannot be told."""
    view_class = getattr(view, "cls", None)
    if view_class is None or not hasattr(view_class, "permission_classes"):
        return False
    from rest_framework.permissions import AllowAny

    return all(
        isinstance(permission, type) and issubclass(permission, AllowAny)
        for permission in view_class.permission_classes
    )
