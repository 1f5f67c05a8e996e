"""One launch is one trace: the create request, every task, every driver call and every
guest report (in-memory exporter; Django's, Celery's and, with OTEL_TRACE_SQL, psycopg's
instrumentation as in production). Without an exporter configured, nothing is traced."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from observability import tracing
from provisioning import steps
from provisioning.models import Cluster
from tests import portal_process
from tests.provisioning.test_launch import launch

GUEST = [spec.name for spec in steps.performed_by(steps.Performer.GUEST)]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    with override_settings(OTEL_TRACE_SQL=True):
        assert tracing.setup(spans)
    assert PsycopgInstrumentor().is_instrumented_by_opentelemetry
    yield spans
    # The rest of the run is not traced: the instrumentation comes off, the exporter shuts.
    for instrumentor in (DjangoInstrumentor(), CeleryInstrumentor(), PsycopgInstrumentor()):
        instrumentor.uninstrument()
    tracing._instrumented = False
    spans.shutdown()


def test_one_launch_is_one_trace(
    exporter: InMemorySpanExporter, demo_cloud: Any, alice: Any, acme: Any, api_for: Any
) -> None:
    exporter.clear()
    created = launch(api_for(alice, acme), count=2)
    cluster = Cluster.objects.get(uuid=created["id"])
    assert cluster.status == "running" and cluster.trace_parent
    launch_trace = int(cluster.trace_parent.split("-")[1], 16)
    spans = exporter.get_finished_spans()
    names = [span.name for span in spans]
    in_launch = [span for span in spans if span.context.trace_id == launch_trace]

    roots = [s for s in in_launch if s.parent is None]
    assert len(roots) == 1 and roots[0].name.startswith("POST")  # the create request
    kinds = {span.name.split(".")[0] for span in in_launch}
    assert "driver" in kinds and "guest" in kinds, names
    tasks = [s for s in in_launch if s.name.startswith("run/")]
    assert {s.name for s in tasks} >= {
        "run/provisioning.launch_cluster",
        "run/provisioning.run_step",
    }
    for name in ("driver.ensure_volume", "driver.ensure_domain", "driver.start_domain"):
        assert sum(s.name == name for s in in_launch) == 2, name  # one per node
    spans_of_reports = [s for s in in_launch if s.name == "guest.report"]
    reports = [r for s in spans_of_reports for r in str((s.attributes or {})["reports"]).split(",")]
    # Two nodes, three guest steps, started and done; instant guests send them in a batch.
    each_node = [f"{step}:{state}" for step in GUEST for state in ("started", "done")]
    assert sorted(reports) == sorted(each_node * 2)
    assert len(spans_of_reports) == 2
    # Every task, driver call and report of this launch is in its trace, none elsewhere.
    for span in spans:
        if span.name.startswith(("driver.", "guest.report", "run/provisioning.run_step")):
            assert span.context.trace_id == launch_trace, span.name


@pytest.mark.parametrize(
    ("endpoint", "provider"),
    [("", "ProxyTracerProvider"), ("http://127.0.0.1:9", "TracerProvider")],
)
def test_on_only_with_an_endpoint(endpoint: str, provider: str, tmp_path: Any) -> None:
    """A process as the portal starts one: traced only when OTLP has somewhere to go."""
    env = portal_process.embedded_env(tmp_path, 0, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)
    portal_process.manage(env, "init_secrets")
    shown = portal_process.manage(
        env,
        "shell",
        "-c",
        "from opentelemetry import trace; print(type(trace.get_tracer_provider()).__name__)",
    )
    assert shown.split()[-1] == provider


def test_sql_spans_only_when_asked(tmp_path: Any) -> None:
    """A span per SQL statement costs a launch about a tenth: off unless OTEL_TRACE_SQL."""
    shown = {}
    for flag in ("0", "1"):
        env = portal_process.embedded_env(
            tmp_path, 0, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OTEL_TRACE_SQL=flag
        )
        portal_process.manage(env, "init_secrets")
        shown[flag] = portal_process.manage(
            env,
            "shell",
            "-c",
            "from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor as P; "
            "print(P().is_instrumented_by_opentelemetry)",
        ).split()[-1]
    assert shown == {"0": "False", "1": "True"}
