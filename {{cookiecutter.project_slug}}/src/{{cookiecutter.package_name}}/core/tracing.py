"""OpenTelemetry traces over OTLP/HTTP, on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

Each request gets a server span, with its SQL and Redis calls (and those a feature traces
itself) as children; the trace and span ids join every JSON log line written inside one.
Without the endpoint none of it is imported or set up, and no request pays for it.

One tracer provider per process, made by the first app that process builds: gunicorn builds the
app in each worker after the fork (`preload_app` stays off), so that each worker exports from its
own thread. The SDK also reads its standard variables from the environment: OTEL_TRACES_SAMPLER,
OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_SCHEDULE_DELAY and the rest.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from flask import Flask

from .observability import add_log_filter
from .settings import APP_VERSION, Settings, init_feature_settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from sqlalchemy import Engine

SERVICE_NAME = "{{ cookiecutter.project_slug }}"


class TracingSettings(Settings):
    # The collector's OTLP/HTTP address, e.g. http://localhost:4318; unset = no tracing.
    otel_exporter_otlp_endpoint: str | None = None
    # The full address for traces, when it is not the endpoint's /v1/traces.
    otel_exporter_otlp_traces_endpoint: str | None = None
    otel_service_name: str = SERVICE_NAME
    # Requests without a trace (comma-separated patterns searched in the URL): the probes and
    # the metrics scrapes would bury the rest.
    otel_python_flask_excluded_urls: str = "/health/live,/health/ready,/metrics"

    @property
    def traces_endpoint(self) -> str | None:
        if self.otel_exporter_otlp_traces_endpoint:
            return self.otel_exporter_otlp_traces_endpoint
        if self.otel_exporter_otlp_endpoint:
            return self.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        return None


_provider: TracerProvider | None = None  # this process's (a forked child keeps its parent's)


def init_tracing(app: Flask) -> None:
    """Trace the app's requests and its SQL and Redis calls when an endpoint is set.

    Called before any other `before_request` hook is registered, so that every request, one
    refused early too, has its span.
    """
    settings = init_feature_settings(app, TracingSettings)
    endpoint = settings.traces_endpoint
    if endpoint is None:
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    provider = _tracer_provider(settings, endpoint)
    app.extensions["tracer_provider"] = provider
    FlaskInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls=settings.otel_python_flask_excluded_urls
    )
    instrument(app, RedisInstrumentor())
    _trace_engine(app.extensions["database_engine"], provider)


def tracing_enabled(app: Flask) -> bool:
    """Whether the app traces (a feature then instruments its own calls)."""
    return "tracer_provider" in app.extensions


class Instrumentor(Protocol):
    """One of OpenTelemetry's library instrumentations (they patch the library process-wide)."""

    @property
    def is_instrumented_by_opentelemetry(self) -> bool: ...

    def instrument(self, **options: Any) -> None: ...


def instrument(app: Flask, instrumentor: Instrumentor, **options: Any) -> None:
    """Switch on one of OpenTelemetry's library instrumentations, once per process."""
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=app.extensions["tracer_provider"], **options)


def _tracer_provider(settings: TracingSettings, endpoint: str) -> TracerProvider:
    global _provider
    if _provider is None:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create(
            {"service.name": settings.otel_service_name, "service.version": APP_VERSION}
        )
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        trace.set_tracer_provider(provider)
        add_log_filter(TraceContextFilter())
        _provider = provider
    return _provider


def _trace_engine(engine: Engine, provider: TracerProvider) -> None:
    """A span for each SQL statement of this engine (each app has its own engine).

    The SQLAlchemy instrumentation's engine listener, without `SQLAlchemyInstrumentor`: that
    also patches SQLAlchemy's engine factories, its asyncio one too (which needs greenlet), and
    declines SQLAlchemy 2.1, whose engine events are those of 2.0.
    """
    from opentelemetry import metrics, trace
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    tracer = trace.get_tracer("opentelemetry.instrumentation.sqlalchemy", tracer_provider=provider)
    # Connection pool metrics: nothing records them unless a meter provider is set up.
    meter = metrics.get_meter("opentelemetry.instrumentation.sqlalchemy")
    connections = meter.create_up_down_counter("db.client.connections.usage", unit="connections")
    EngineTracer(tracer, engine, connections)


class TraceContextFilter(logging.Filter):
    """Adds `trace_id` and `span_id` to a line written inside a span."""

    def filter(self, record: logging.LogRecord) -> bool:
        from opentelemetry import trace  # here: this module loads without OpenTelemetry

        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = trace.format_trace_id(context.trace_id)
            record.span_id = trace.format_span_id(context.span_id)
        return True
