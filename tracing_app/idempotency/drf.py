"""DRF: :class:`IdempotentAPIViewMixin` guards an APIView, generic view or ViewSet (every unsafe action a
router maps), claiming after ``initial()``. What a guarded request gets is described in
:mod:`tracing_app.idempotency.guard`.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponseBase

from tracing_app.idempotency.atomic_requests import NonAtomicAliases, as_atomic_requests_would
from tracing_app.idempotency.guard import Guard
from tracing_app.idempotency.options import IdempotencyOptions, View


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
        view._non_atomic_requests = NonAtomicAliases(getattr(view, "_non_atomic_requests", ()))
        return view

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        guard = Guard(self._idempotency_options(request.method), request)
        if not guard.applies:
            with as_atomic_requests_would():
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


class _Answered(Exception):
    """Carries an early response out of DRF's ``initial()`` to ``handle_exception()``."""

    def __init__(self, response: HttpResponseBase) -> None:
        super().__init__(response.status_code)
        self.response = response
