"""What the cluster page shows live: progress and ETA, node steps, running nodes' health
with their last hour of CPU and memory, the timeline.

The same context feeds the page, its polling fragment and the websocket fragments, so
the three never disagree.
"""

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Prefetch
from django.template.loader import render_to_string
from django.utils import timezone

from observability import charts
from observability.models import Event
from provisioning import addresses, eta, node_health, steps
from provisioning.models import Cluster, HealthState, Node, NodeHeartbeat, NodeStep
from provisioning.states import CLUSTER_LAUNCHING, NodeStatus

SEED_MARK_SECONDS = 90
TIMELINE = 200  # most recent events on the page
MIN_CHART_SECONDS = 60.0


def with_nodes(queryset: Any) -> Any:
    nodes = (
        Node.objects.exclude(status=NodeStatus.DELETED)
        .select_related("hypervisor", "port", "pool__size", "health", "k3s_version", "replaces")
        .prefetch_related(Prefetch("steps", queryset=NodeStep.objects.order_by("id")))
        .order_by("id")
    )
    related = ("region", "k3s_version", "upgrade_to", "network", "firewall")
    return queryset.select_related(*related).prefetch_related(
        Prefetch("nodes", queryset=nodes), "pools__size"
    )


def _step_cells(node: Node) -> list[dict[str, Any]]:
    rows = {row.step: row for row in node.steps.all()}
    cells = []
    for spec in steps.TABLE:
        row = rows.get(spec.name)
        if row is None or row.started_at is None:
            state, seconds = "pending", None
        elif row.failed:
            state, seconds = "failed", None
        elif row.finished_at is None:
            state, seconds = "running", None
        else:
            state, seconds = "done", (row.finished_at - row.started_at).total_seconds()
        cells.append({"step": spec.name, "label": spec.label, "state": state, "seconds": seconds})
    return cells


def phase(cluster: Cluster) -> str:
    """What the page says the cluster is doing: a launch again after it was ready once is
    a scale (or a retry), not a new launch."""
    if cluster.status in CLUSTER_LAUNCHING:
        return "scaling" if cluster.ready_at else "launching"
    return str(cluster.status)


def current_step(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """The step a node is at: one running or failed, else the last done, else the first."""
    for cell in cells:
        if cell["state"] in ("running", "failed"):
            return cell
    done = [cell for cell in cells if cell["state"] == "done"]
    return done[-1] if done else cells[0]


def _row(node: Node) -> dict[str, Any]:
    cells = _step_cells(node)
    return {
        "node": node,
        "ip": addresses.address_of(node),
        "cells": cells,
        "current": current_step(cells),
    }


def health_context(nodes: list[Node]) -> dict[str, Any]:
    """Each running node's verdict, latest figures and last hour (one query for all).
    A node's charts span from its first sample of the hour to now, so a node up for five
    minutes has five minutes across, not a sliver at the right-hand end."""
    running = [node for node in nodes if node.status == NodeStatus.RUNNING]
    now = timezone.now()
    since = now - timedelta(seconds=settings.HEARTBEAT_HISTORY_SECONDS)
    history: dict[int, list[NodeHeartbeat]] = defaultdict(list)
    beats = NodeHeartbeat.objects.filter(node__in=running, at__gte=since).order_by("id")
    for beat in beats if running else []:
        history[beat.node_id].append(beat)
    rows = []
    for node in running:
        samples = history[node.pk]
        start = samples[0].at if samples else now
        span = max((now - start).total_seconds(), MIN_CHART_SECONDS)
        timed = [((beat.at - start).total_seconds(), beat) for beat in samples]
        health = node_health.health_of(node)
        rows.append(
            {
                "node": node,
                "state": health.state if health else HealthState.UNKNOWN,
                "reason": health.reason if health else node_health.FIRST_HEARTBEAT,
                "health": health,
                "latest": samples[-1] if samples else None,
                "since": start,
                "cpu": charts.line([(t, b.cpu_percent) for t, b in timed], window=span),
                "memory": charts.line([(t, b.memory_percent) for t, b in timed], window=span),
            }
        )
    return {
        "health_rows": rows,
        "healthy_nodes": sum(1 for row in rows if row["state"] == HealthState.HEALTHY),
        "unhealthy_nodes": sum(1 for row in rows if row["state"] == HealthState.UNHEALTHY),
        "history_minutes": settings.HEARTBEAT_HISTORY_SECONDS // 60,
    }


def live_context(cluster: Cluster) -> dict[str, Any]:
    nodes = list(cluster.nodes.all())
    # Newest first: what just happened is at the top, in view as it arrives.
    events = list(Event.objects.filter(cluster=cluster).order_by("-id")[:TIMELINE])
    progress = events[0].progress if events else 0
    launching = cluster.status in CLUSTER_LAUNCHING
    total = None
    if cluster.ready_at:
        total = (cluster.ready_at - cluster.created_at).total_seconds()
    return {
        "cluster": cluster,
        "phase": phase(cluster),
        "ready_nodes": sum(1 for n in nodes if n.status == NodeStatus.RUNNING),
        "upgraded_nodes": sum(1 for n in nodes if n.version == cluster.upgrade_to),
        "launching": launching,
        "progress": progress,
        "eta_seconds": eta.remaining_seconds(cluster) if launching else None,
        "total_seconds": total,
        "seed_mark": SEED_MARK_SECONDS,
        "nodes": [_row(node) for node in nodes],
        "events": events,
        "last_event_id": events[0].id if events else 0,
        "steps": steps.TABLE,
        **health_context(nodes),
    }


def live_fragments(cluster: Cluster) -> str:
    """The live parts as out-of-band fragments (htmx swaps each by its id)."""
    return render_to_string(
        "provisioning/_partials/cluster_live.html", {**live_context(cluster), "oob": True}
    )


def health_fragment(cluster: Cluster) -> str:
    """The health card alone, out of band: what a new heartbeat changes."""
    context = {"cluster": cluster, **health_context(list(cluster.nodes.all())), "oob": True}
    return render_to_string("provisioning/_partials/cluster_health.html", context)
