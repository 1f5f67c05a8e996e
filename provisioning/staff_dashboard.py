"""The staff dashboard's figures (/staff/): the last 24 hours of launches across every
organisation, and the hosts' headroom now. Read from the database; /metrics has the same
story for Prometheus over longer spans."""

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F
from django.utils import timezone

from observability import charts
from provisioning import launch_times
from provisioning.models import Cluster, Hypervisor, Node
from provisioning.states import NodeStatus

DAY = timedelta(hours=24)
SLOWEST = 10


def launches_per_hour(now: datetime) -> charts.Bars:
    """Clusters asked for in each of the last 24 hours (the current one last)."""
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    hours = [this_hour - timedelta(hours=back) for back in range(23, -1, -1)]
    created = Cluster.objects.filter(created_at__gte=hours[0]).values_list("created_at", flat=True)
    counts = Counter(moment.replace(minute=0, second=0, microsecond=0) for moment in created)
    return charts.bars([(f"{hour:%H}:00", counts[hour]) for hour in hours])


def step_times() -> dict[str, Any]:
    """p50 and p95 of create-to-running and of each step, as bars on one scale."""
    shown = launch_times.figures(DAY)
    rows = [shown["overall"], *shown["steps"]]
    top = max((row["p95"] or 0.0 for row in rows), default=0.0) or 1.0
    for row in rows:
        row["p50_share"] = 100 * (row["p50"] or 0.0) / top
        row["p95_share"] = 100 * (row["p95"] or 0.0) / top
    return {"rows": rows, "top": top}


def failures_by_code(since: datetime) -> list[dict[str, Any]]:
    """Nodes that failed in the window and are still failed, by their error code."""
    failed = Node.objects.filter(status=NodeStatus.FAILED, progressed_at__gte=since)
    counted = failed.values("error_code").annotate(count=Count("pk")).order_by("-count")
    return [dict(row) for row in counted]


def hosts_by_headroom() -> list[dict[str, Any]]:
    """Every host with the share of its (overcommitted) capacity still free, least first."""
    rows = []
    for host in Hypervisor.objects.select_related("region"):
        cpu = 1 - host.vcpus_allocated / host.vcpus_capacity if host.vcpus_capacity else 0.0
        memory = (
            1 - host.memory_mib_allocated / host.memory_mib_capacity
            if host.memory_mib_capacity
            else 0.0
        )
        rows.append(
            {
                "host": host,
                "cpu": 100 * cpu,
                "memory": 100 * memory,
                "headroom": 100 * min(cpu, memory),
            }
        )
    return sorted(rows, key=lambda row: row["headroom"])


def slowest_launches(since: datetime) -> list[Cluster]:
    """The clusters that took longest from the request to running, ready in the window."""
    ready = Cluster.objects.filter(ready_at__gte=since).select_related("organisation", "region")
    took = ready.annotate(took=F("ready_at") - F("created_at"))
    return list(took.order_by("-took")[:SLOWEST])


def figures() -> dict[str, Any]:
    now = timezone.now()
    since = now - DAY
    return {
        "launches": launches_per_hour(now),
        "step_times": step_times(),
        "failures": failures_by_code(since),
        "hosts": hosts_by_headroom(),
        "slowest": slowest_launches(since),
    }
