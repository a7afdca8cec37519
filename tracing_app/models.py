"""The app's models: each area defines its own in its own module; this module only imports them."""

from tracing_app.idempotency.models import IdempotencyRecord  # noqa: F401
from tracing_app.outbox.models import OutboxMessage  # noqa: F401
from tracing_app.traces.models import DroppedEvents, Trace, TraceEvent  # noqa: F401
