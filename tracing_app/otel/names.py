"""The names tracing_app gives the correlation ID in OpenTelemetry data, shared by every otel module."""

#: Span attribute holding the correlation ID on server, task and every other span of a transaction.
ATTRIBUTE = "correlation_id"
#: W3C baggage entry carrying the correlation ID to other services and task messages.
BAGGAGE_KEY = "correlation_id"
