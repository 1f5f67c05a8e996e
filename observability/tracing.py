"""OpenTelemetry traces, one per launch: the create request's span is the root; Celery
tasks follow it through their message headers (the Celery instrumentation); every driver
call is a span (`traced`); and each guest report continues the launch's trace from the
`traceparent` its cluster keeps (`continued`), so the whole launch is one trace although
guests report over new connections. Exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT
is set; off otherwise (the API's no-op tracer: spans cost nothing). A span per SQL
statement only with OTEL_TRACE_SQL: it is the whole cost of tracing a launch."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

tracer = trace.get_tracer("k3s-portal")
_propagator = TraceContextTextMapPropagator()
_instrumented = False


def setup(exporter: SpanExporter | None = None) -> bool:
    """Trace this process: to `exporter` (tests), else over OTLP when configured."""
    global _instrumented
    if exporter is None and not settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": "k3s-portal"}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    if not _instrumented:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        DjangoInstrumentor().instrument()
        CeleryInstrumentor().instrument()
        if settings.OTEL_TRACE_SQL:
            PsycopgInstrumentor().instrument()
        _instrumented = True
    return True


def traceparent() -> str:
    """The current span's W3C traceparent ("" when nothing is traced)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent", "")


@contextmanager
def continued(parent: str, name: str, **attributes: str) -> Iterator[None]:
    """A span inside the trace `parent` names (a new trace when it names none)."""
    context = _propagator.extract({"traceparent": parent}) if parent else None
    with tracer.start_as_current_span(name, context=context, attributes=attributes):
        yield


class Traced:
    """Every public method of `inner` called inside a span `<prefix>.<method>`."""

    def __init__(self, inner: Any, prefix: str) -> None:
        self._inner, self._prefix = inner, prefix

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name.startswith("_") or not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            with tracer.start_as_current_span(f"{self._prefix}.{name}"):
                return value(*args, **kwargs)

        return call


def traced(inner: Any, prefix: str) -> Any:
    return Traced(inner, prefix)
