"""How a view is guarded: :class:`IdempotencyOptions` and the two claim modes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.http import HttpResponseBase

from tracing_app.conf import app_settings

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
        """Whether the claim commits with the view's writes (see :mod:`tracing_app.idempotency.guard`)."""
        return (
            (self.mode or app_settings.IDEMPOTENCY_MODE) == "transaction"
            and connections[using].vendor in _ONE_COMMIT_VENDORS
            and not connections.settings[using].get("ATOMIC_REQUESTS")
        )
