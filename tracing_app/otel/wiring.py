"""What :func:`tracing_app.otel.enable` sets up, and takes down again in :func:`tracing_app.otel.disable`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import Any

from opentelemetry import trace

# mypy does not see this class (it stops on the module), though it is the package's one public name.
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.trace import TracerProvider

from tracing_app import logs, outgoing_correlation
from tracing_app.conf import app_settings
from tracing_app.otel import export, linkage, propagation, sdk_logs, tasks

logger = logging.getLogger("tracing_app.otel")

# A provider we already gave a CorrelationSpanProcessor (the SDK offers no way to remove one).
_LINKED_ATTR = "_tracing_app_linked"


@dataclass
class Wiring:
    """The provider in use and everything connected for it, so that it can all be undone."""

    provider: Any
    pipeline: export.ExportPipeline | None = None
    instrumentors: list[BaseInstrumentor] = field(default_factory=list)
    task_hooks: tasks.TaskHooks | None = None
    replaced_propagator: TextMapPropagator | None = None
    log_filters: list[tuple[logging.Logger, sdk_logs.SdkLogFilter]] = field(default_factory=list)

    @classmethod
    def start(cls, tracer_provider: Any = None) -> Wiring:
        wiring = cls(*_choose_provider(tracer_provider))
        _link(wiring.provider)
        wiring.log_filters = sdk_logs.install()
        wiring.replaced_propagator = propagation.install()
        wiring._instrument_django()
        if find_spec("celery") is not None:
            wiring._instrument_celery()
        if app_settings.OTEL_INSTRUMENT_HTTP:
            wiring._instrument_http()
        logs.set_span_source(linkage.span_ids)
        return wiring

    def stop(self) -> None:
        logs.set_span_source(None)
        self.task_hooks = None
        for instrumentor in reversed(self.instrumentors):
            instrumentor.uninstrument()
        propagation.restore(self.replaced_propagator)
        sdk_logs.uninstall(self.log_filters)
        flush(self.provider)

    # -- instrumentation ----------------------------------------------------------------------------------

    def _use(self, instrumentor: BaseInstrumentor, **kwargs: Any) -> None:
        """Instrument unless the application already did (then its configuration stays, and so does it)."""
        if instrumentor.is_instrumented_by_opentelemetry:
            logger.info("%s was already instrumented; keeping that.", type(instrumentor).__name__)
            return
        instrumentor.instrument(tracer_provider=self.provider, **kwargs)
        self.instrumentors.append(instrumentor)

    def _instrument_django(self) -> None:
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        if find_spec("opentelemetry.instrumentation.asgi") is None:
            logger.warning(
                "opentelemetry-instrumentation-asgi is not installed: requests served over ASGI get no span."
            )
        # Position 0: outermost, so the correlation middleware runs inside the server span.
        self._use(DjangoInstrumentor(), middleware_position=0)

    def _instrument_celery(self) -> None:
        try:
            from opentelemetry.instrumentation.celery import CeleryInstrumentor
        except ImportError:
            logger.warning(
                "opentelemetry-instrumentation-celery is not installed: tasks get no span and start no trace."
            )
            return
        self._use(CeleryInstrumentor())
        # The Celery edge's pipeline calls these around OpenTelemetry's own task receivers.
        self.task_hooks = tasks.TaskHooks(self.pipeline, lambda: flush(self.provider))

    def _instrument_http(self) -> None:
        if find_spec("requests") is not None and find_spec("opentelemetry.instrumentation.requests"):
            from opentelemetry.instrumentation.requests import RequestsInstrumentor

            self._use(RequestsInstrumentor(), request_hook=outgoing_correlation.otel_requests_hook)
        if find_spec("httpx") is not None and find_spec("opentelemetry.instrumentation.httpx"):
            from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

            self._use(
                HTTPXClientInstrumentor(),
                request_hook=outgoing_correlation.otel_httpx_hook,
                async_request_hook=outgoing_correlation.otel_httpx_async_hook,
            )


def _choose_provider(explicit: Any) -> tuple[Any, export.ExportPipeline | None]:
    if explicit is not None:
        return explicit, None
    registered = trace.get_tracer_provider()
    if not isinstance(registered, trace.ProxyTracerProvider):
        return registered, None
    provider, pipeline = export.build_provider()
    trace.set_tracer_provider(provider)
    return provider, pipeline


def _link(provider: Any) -> None:
    """Give an SDK provider the correlation span processor, once. Other providers get the attribute on
    server and task spans only (set explicitly by the linkage)."""
    if isinstance(provider, TracerProvider) and not getattr(provider, _LINKED_ATTR, False):
        provider.add_span_processor(linkage.CorrelationSpanProcessor())
        setattr(provider, _LINKED_ATTR, True)


def flush(provider: Any) -> None:
    force_flush = getattr(provider, "force_flush", None)
    if force_flush is not None:
        force_flush()
