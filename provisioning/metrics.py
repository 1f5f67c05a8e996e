"""/metrics in Prometheus' text format: what the database knows (launches by outcome and
error code, step and create-to-running histograms, nodes and clusters by status, each
host's capacity and allocations, queue depths), computed at scrape time in a constant
number of queries, plus the processes' own instruments (observability.instruments) added
up across processes. For staff, or for Prometheus with the METRICS_TOKEN bearer token."""

import hmac
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from portal.second_factor import verified
from provisioning import queues
from provisioning.models import Cluster, HealthState, Hypervisor, Node, NodeStep
from provisioning.states import NodeStatus

# Seconds: the steps take from milliseconds (a clone) to a minute or more (a real boot).
STEP_BUCKETS = (0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 300)
LAUNCH_BUCKETS = (5, 10, 20, 30, 45, 60, 75, 90, 120, 180, 300, 600)


def _histogram(
    name: str, documentation: str, rows: list[dict[str, Any]], label: str | None, buckets: tuple
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=[label] if label else [])
    for row in rows:
        cumulative = [(str(b), row[f"le_{i}"]) for i, b in enumerate(buckets)]
        total = row["total"]
        seconds = row["seconds"].total_seconds() if row["seconds"] else 0.0
        family.add_metric([row[label]] if label else [], [*cumulative, ("+Inf", total)], seconds)
    return family


def _durations(queryset: Any, start: str, end: str, buckets: tuple, by: str | None) -> list:
    """Per `by` (or overall): how many durations end-start fall in each bucket, and their sum."""
    took = ExpressionWrapper(F(end) - F(start), output_field=DurationField())
    rows = queryset.filter(**{f"{start}__isnull": False, f"{end}__isnull": False}).annotate(
        took=took
    )
    if by:
        rows = rows.values(by)
    buckets_sql = {
        f"le_{i}": Count("pk", filter=Q(took__lte=timedelta(seconds=b)))
        for i, b in enumerate(buckets)
    }
    aggregate = {**buckets_sql, "total": Count("pk"), "seconds": Sum("took")}
    if by:
        return list(rows.annotate(**aggregate).order_by(by))
    found = rows.aggregate(**aggregate)
    return [found] if found["total"] else []


class PortalCollector:
    """Reads the database at each scrape."""

    def collect(self) -> Iterator[Any]:
        nodes = GaugeMetricFamily("k3s_portal_nodes", "Nodes by status.", labels=["status"])
        by_status = dict(Node.objects.values_list("status").annotate(n=Count("pk")))
        for status in NodeStatus.values:
            nodes.add_metric([status], by_status.get(status, 0))
        yield nodes

        health = GaugeMetricFamily(
            "k3s_portal_running_nodes_health",
            "Running nodes by the health their heartbeats show.",
            labels=["state"],
        )
        running = Node.objects.filter(status=NodeStatus.RUNNING)
        judged = dict(running.values_list("health__state").annotate(n=Count("pk")))
        for state in HealthState.values:
            count = judged.get(state, 0)
            if state == HealthState.UNKNOWN:
                count += judged.get(None, 0)  # no heartbeat yet, so no health row
            health.add_metric([state], count)
        yield health

        clusters = GaugeMetricFamily(
            "k3s_portal_clusters", "Clusters by status.", labels=["status"]
        )
        for status, count in Cluster.objects.values_list("status").annotate(n=Count("pk")):
            clusters.add_metric([status], count)
        yield clusters

        finished = CounterMetricFamily(
            "k3s_portal_node_launches",
            "Node launches that finished, by outcome and error code.",
            labels=["outcome", "code"],
        )
        succeeded = Node.objects.filter(ready_at__isnull=False).count()
        finished.add_metric(["running", ""], succeeded)
        failed = (
            Node.objects.exclude(error_code="").values_list("error_code").annotate(n=Count("pk"))
        )
        for code, count in failed:
            finished.add_metric(["failed", code], count)
        yield finished
        yield CounterMetricFamily(
            "k3s_portal_clusters_created", "Clusters ever created.", value=Cluster.objects.count()
        )

        steps = NodeStep.objects.filter(failed=False)
        yield _histogram(
            "k3s_portal_launch_step_seconds",
            "Time each launch step took, by step.",
            _durations(steps, "started_at", "finished_at", STEP_BUCKETS, "step"),
            "step",
            STEP_BUCKETS,
        )
        yield _histogram(
            "k3s_portal_create_to_running_seconds",
            "Time from a cluster's creation to running.",
            _durations(Cluster.objects.all(), "created_at", "ready_at", LAUNCH_BUCKETS, None),
            None,
            LAUNCH_BUCKETS,
        )
        yield from _hosts()
        yield from _queues()


def _hosts() -> Iterator[Any]:
    labels = ["host", "region"]
    families = {
        name.removeprefix("k3s_portal_hypervisor_"): GaugeMetricFamily(name, text, labels=labels)
        for name, text in (
            ("k3s_portal_hypervisor_vcpus_capacity", "vCPUs a host offers, after overcommit."),
            ("k3s_portal_hypervisor_vcpus_allocated", "vCPUs claimed by nodes on a host."),
            ("k3s_portal_hypervisor_memory_mib_capacity", "Memory a host offers (MiB)."),
            ("k3s_portal_hypervisor_memory_mib_allocated", "Memory claimed on a host (MiB)."),
            ("k3s_portal_hypervisor_up", "1 when a host takes nodes (state active)."),
        )
    }
    for host in Hypervisor.objects.select_related("region").order_by("name"):
        values = [host.name, host.region.slug]
        families["vcpus_capacity"].add_metric(values, host.vcpus_total * host.cpu_overcommit)
        families["vcpus_allocated"].add_metric(values, host.vcpus_allocated)
        families["memory_mib_capacity"].add_metric(
            values, host.memory_mib_total * host.memory_overcommit
        )
        families["memory_mib_allocated"].add_metric(values, host.memory_mib_allocated)
        families["up"].add_metric(values, 1 if host.state == "active" else 0)
    yield from families.values()


def _queues() -> Iterator[Any]:
    """Messages waiting in each queue the portal uses (the default one and each host's)."""
    depth = GaugeMetricFamily(
        "k3s_portal_queue_depth", "Tasks waiting in a queue, by queue.", labels=["queue"]
    )
    names = [queues.DEFAULT] + [
        queues.for_host(name) for name in Hypervisor.objects.values_list("name", flat=True)
    ]
    connection = current_app.connection_for_read()
    try:
        with connection:
            channel: Any = connection.default_channel  # a kombu virtual channel
            for name in names:
                try:
                    waiting = channel.queue_declare(name, passive=True).message_count
                except connection.channel_errors:  # never declared: nothing waits there
                    channel = connection.channel()
                    waiting = 0
                depth.add_metric([name], waiting)
    except connection.connection_errors:
        return  # the broker is down: no depth to report
    yield depth


def registry() -> CollectorRegistry:
    scraped = CollectorRegistry()
    MultiProcessCollector(scraped)  # registers itself
    scraped.register(PortalCollector())
    return scraped


def allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    return bool(request.user.is_staff and verified(request))


def metrics(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        return HttpResponse(
            "Staff only, or a scrape with the METRICS_TOKEN bearer token.\n", status=403
        )
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
