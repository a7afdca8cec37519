"""The app's admin: each area registers its own in its own module; this module only imports them."""

from tracing_app.idempotency import admin as idempotency_admin  # noqa: F401
from tracing_app.outbox import admin as outbox_admin  # noqa: F401
from tracing_app.traces import admin as traces_admin  # noqa: F401
