"""/metrics: Prometheus' text format, for staff or the METRICS_TOKEN bearer token only;
what a launch leaves in it; the HTTP instrument added up across processes; a scrape's
queries do not grow with the number of nodes."""

import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from cloud.celery import app as celery_app
from provisioning import queues
from provisioning.models import NodeHealth
from tests import second_factor
from tests.provisioning.test_launch import launch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]

TOKEN = "scrape-" + "s" * 40


def scrape(settings: Any) -> dict[str, Any]:
    settings.METRICS_TOKEN = TOKEN
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


def sample(families: dict[str, Any], name: str, **labels: str) -> float:
    """The value of the one sample `name` with these labels."""
    family = families[name.removesuffix("_total").removesuffix("_bucket").removesuffix("_count")]
    [found] = [
        s.value
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return float(found)


def test_only_staff_or_the_token_may_scrape(alice: Any, staff: Any, settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    assert Client().get("/metrics").status_code == 403
    assert Client().get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    customer = Client()
    customer.force_login(alice)
    assert customer.get("/metrics").status_code == 403
    assert second_factor.verified(Client(), staff).get("/metrics").status_code == 200
    settings.METRICS_TOKEN = ""  # no token configured: no token opens it
    assert Client().get("/metrics", headers={"Authorization": "Bearer "}).status_code == 403


def test_a_launch_shows_in_the_metrics(
    demo_cloud: Any, alice: Any, acme: Any, api_for: Any, settings: Any
) -> None:
    launch(api_for(alice, acme))  # 3 nodes, to running through the simulator
    families = scrape(settings)
    assert sample(families, "k3s_portal_nodes", status="running") == 3
    assert sample(families, "k3s_portal_clusters", status="running") == 1
    assert sample(families, "k3s_portal_node_launches_total", outcome="running", code="") == 3
    for step in ("import_image", "start_vm", "cloud_init", "fetch_deps", "launch_k3s"):
        assert sample(families, "k3s_portal_launch_step_seconds_count", step=step) == 3
        assert sample(families, "k3s_portal_launch_step_seconds_bucket", step=step, le="+Inf") == 3
    assert sample(families, "k3s_portal_create_to_running_seconds_count") == 1
    # Their first heartbeats came with the launch; a node yet to send one is unknown.
    assert sample(families, "k3s_portal_running_nodes_health", state="healthy") == 3
    gone, sick = NodeHealth.objects.order_by("pk")[:2]
    gone.delete()
    NodeHealth.objects.filter(pk=sick.pk).update(state="unhealthy")
    rescraped = scrape(settings)
    for state in ("healthy", "unhealthy", "unknown"):
        assert sample(rescraped, "k3s_portal_running_nodes_health", state=state) == 1
    hosts = {s.labels["host"] for s in families["k3s_portal_hypervisor_vcpus_allocated"].samples}
    assert hosts == {"hv-1", "hv-2", "hv-3"}
    allocated = families["k3s_portal_hypervisor_vcpus_allocated"].samples
    assert sum(s.value for s in allocated) == 3  # three small nodes, 1 vCPU each
    # The request that created the cluster, timed by the middleware, by its route.
    created = sample(
        families,
        "k3s_portal_http_request_seconds_count",
        route="api/v1/clusters",
        method="POST",
        status="2xx",
    )
    assert created >= 1


def test_a_scrape_costs_the_same_queries_with_more_nodes(
    demo_cloud: Any,
    alice: Any,
    acme: Any,
    api_for: Any,
    settings: Any,
) -> None:
    client = api_for(alice, acme)
    settings.METRICS_TOKEN = TOKEN
    scraper = Client(headers={"Authorization": f"Bearer {TOKEN}"})

    def queries() -> int:
        with CaptureQueriesContext(connection) as scrape_queries:
            assert scraper.get("/metrics").status_code == 200
        return len(scrape_queries.captured_queries)

    launch(client, name="one", count=1)
    few = queries()
    launch(client, name="many", count=6)
    assert queries() == few <= 12


@pytest.fixture
def broker_queue(demo_cloud: Any) -> Iterator[str]:
    """A host's queue on the real broker (filesystem here, Redis in CI), emptied after."""
    name = queues.for_host("hv-1")
    yield name
    with celery_app.connection_for_write() as connection:
        channel: Any = connection.default_channel
        channel.queue_declare(name)
        channel.queue_purge(name)


def test_queue_depth_and_task_wait_come_from_the_broker(broker_queue: str, settings: Any) -> None:
    """Three pings sent to hv-1's queue with no agent there wait in it; then a worker
    (started in this process, on the same broker) takes them and times their wait."""

    def waits() -> float:
        """Tasks of the queue whose wait was timed so far (none yet: no family at all)."""
        family = scrape(settings).get("k3s_portal_task_wait_seconds")
        samples = family.samples if family is not None else []
        return sum(
            s.value
            for s in samples
            if s.name.endswith("_count") and s.labels["queue"] == broker_queue
        )

    before = waits()
    for _ in range(3):
        celery_app.send_task("provisioning.agent_ping", args=[0], queue=broker_queue)
    families = scrape(settings)
    assert sample(families, "k3s_portal_queue_depth", queue=broker_queue) == 3
    assert sample(families, "k3s_portal_queue_depth", queue="celery") >= 0
    celery_app.conf.task_always_eager = False
    try:
        with start_worker(celery_app, queues=[broker_queue], perform_ping_check=False, pool="solo"):
            # Taken from the queue is not yet started: wait for the three waits timed.
            deadline = time.monotonic() + 60
            while waits() - before < 3:
                assert time.monotonic() < deadline, "the worker started none of them"
                time.sleep(0.2)
        assert sample(scrape(settings), "k3s_portal_queue_depth", queue=broker_queue) == 0
    finally:
        celery_app.conf.task_always_eager = True
    assert waits() - before == 3
