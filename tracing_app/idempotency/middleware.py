"""``IdempotencyMiddleware``: guards the views named in ``IDEMPOTENCY_VIEWS`` (URL names, a router's
included, or dotted paths), with no code change in the view."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase

from tracing_app.conf import app_settings
from tracing_app.idempotency.decorator import guard_view
from tracing_app.idempotency.drf import IdempotentAPIViewMixin
from tracing_app.idempotency.options import IdempotencyOptions, View


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
