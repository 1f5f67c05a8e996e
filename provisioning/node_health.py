"""Running nodes' health, from the heartbeats their guest agent sends every HEARTBEAT_SECONDS
(provisioning/guest_agent.sh; the simulator's in embedded mode).

A heartbeat carries the node's load, CPU, memory, disk and its k3s unit's state, and on
the server the STATUS of every node in `k3s kubectl get nodes`. The last hour is kept for
the cluster page's charts. A running node is unhealthy when its heartbeat stops for
HEARTBEAT_STALE_SECONDS, its k3s unit is not active, or the server's list says it is not
Ready (or lacks it); it is healthy again as soon as none of that holds. Changes to and
from unhealthy go into the cluster's timeline.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from observability import events
from observability.models import EventState
from portal.errors import Conflict
from provisioning import notify
from provisioning.models import HealthState, Node, NodeHealth, NodeHeartbeat
from provisioning.states import NodeStatus

H = HealthState
READY = "Ready"
ACTIVE = "active"
FIRST_HEARTBEAT = "waiting for its first heartbeat"


@dataclass(frozen=True)
class Sample:
    load1: float
    cpu_percent: float
    memory_used_mib: int
    memory_total_mib: int
    disk_used_percent: float
    k3s_state: str


# What a heartbeat measures, as the agent names it (its k3s unit's state comes as `k3s`).
FIGURES = ("load1", "cpu_percent", "memory_used_mib", "memory_total_mib", "disk_used_percent")


class NotRunning(Conflict):
    """Only a running node sends heartbeats (a failed or deleted one is told to stop)."""

    code = "node_not_running"


def _stale() -> timedelta:
    return timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS)


def verdict(node: Node, health: NodeHealth, now: datetime) -> tuple[str, str]:
    """The node's state and the reason shown for it."""
    if health.seen_at is None:
        if node.ready_at is not None and now - node.ready_at > _stale():
            return H.UNHEALTHY, "no heartbeat since it became ready"
        return H.UNKNOWN, FIRST_HEARTBEAT
    if now - health.seen_at > _stale():
        return H.UNHEALTHY, f"no heartbeat since {health.seen_at:%H:%M:%S} UTC"
    if health.k3s_state != ACTIVE:
        return H.UNHEALTHY, f"its k3s service is not running ({health.k3s_state or 'unknown'})"
    # A node that has just joined may take a moment to be Ready in the server's list.
    settled = node.ready_at is None or now - node.ready_at > _stale()
    if settled and health.kube_status == NodeHealth.ABSENT:
        return H.UNHEALTHY, "the server's node list does not have it"
    if settled and health.kube_status and not health.kube_status.startswith(READY):
        return H.UNHEALTHY, f"Kubernetes reports it {health.kube_status}"
    return H.HEALTHY, ""


def health_of(node: Node) -> NodeHealth | None:
    """The node's health row (select_related("health") reads it with the node)."""
    try:
        return node.health
    except NodeHealth.DoesNotExist:
        return None


def _locked_health(node: Node, now: datetime) -> NodeHealth:
    """The node's health row, locked; for its first heartbeat a new one, saved by _judge."""
    health = NodeHealth.objects.select_for_update().filter(node=node).first()
    return health or NodeHealth(node=node, state=H.UNKNOWN, changed_at=now)


def _save(health: NodeHealth) -> None:
    if not health._state.adding:
        health.save()
        return
    # An upsert: two first heartbeats at once both found no row to lock.
    NodeHealth.objects.bulk_create(
        [health],
        update_conflicts=True,
        unique_fields=["node"],
        update_fields=[f.name for f in NodeHealth._meta.concrete_fields if not f.primary_key],
    )


def _judge(node: Node, health: NodeHealth, now: datetime) -> None:
    """Save the verdict on the (locked) row; a change to or from unhealthy is an event."""
    state, reason = verdict(node, health, now)
    was = health.state
    if state != was:
        health.changed_at = now
    health.state, health.reason = state, reason
    _save(health)
    if state == was or H.UNHEALTHY not in (state, was):
        return
    if state == H.UNHEALTHY:
        events.record(
            node.cluster,
            f"{node.name} is unhealthy: {reason}.",
            state=EventState.FAILED,
            node=node.name,
        )
        notify.node_unhealthy(node, reason)
    else:
        events.record(node.cluster, f"{node.name} is healthy again.", node=node.name)


@transaction.atomic
def record(node: Node, sample: Sample, kube_nodes: Mapping[str, str] | None, now: datetime) -> str:
    """Apply one heartbeat (`kube_nodes`: the server's list, name to STATUS, or None);
    returns the node's health state."""
    if node.status != NodeStatus.RUNNING:
        raise NotRunning(f"node is {node.status}, not running: no more heartbeats")
    health = _locked_health(node, now)
    # At most two samples per interval are kept, however often a guest posts; the beat
    # drops those older than the history (prune_history).
    last = health.sampled_at
    if last is None or now - last >= timedelta(seconds=settings.HEARTBEAT_SECONDS / 2):
        NodeHeartbeat.objects.create(node=node, at=now, **asdict(sample))
        health.sampled_at = now
    health.seen_at, health.k3s_state = now, sample.k3s_state[:20]
    if node.is_server and kube_nodes is not None:
        others = Node.objects.filter(cluster_id=node.cluster_id, status=NodeStatus.RUNNING)
        for other in others.exclude(pk=node.pk).select_related("cluster").order_by("pk"):
            other_health = _locked_health(other, now)
            other_health.kube_status = kube_nodes.get(other.name, NodeHealth.ABSENT)[:40]
            _judge(other, other_health, now)
        health.kube_status = kube_nodes.get(node.name, NodeHealth.ABSENT)[:40]
    _judge(node, health, now)
    return health.state


def prune_history(now: datetime) -> None:
    """Drop every node's samples older than the history the charts show: one statement on
    the beat, not one per heartbeat."""
    history = timedelta(seconds=settings.HEARTBEAT_HISTORY_SECONDS)
    NodeHeartbeat.objects.filter(at__lt=now - history).delete()


def silent_nodes(now: datetime) -> list[int]:
    """Running nodes not yet judged unhealthy whose heartbeat is overdue (or never came)."""
    cutoff = now - _stale()
    overdue = Node.objects.filter(status=NodeStatus.RUNNING, ready_at__lt=cutoff).exclude(
        health__state=H.UNHEALTHY
    )
    never = overdue.filter(health__isnull=True)
    late = overdue.filter(health__seen_at__lt=cutoff)
    return list((never | late).values_list("pk", flat=True))


def judge_silent(now: datetime) -> int:
    """Mark the silent nodes unhealthy (each in its own transaction); how many were."""
    count = 0
    for node_id in silent_nodes(now):
        with transaction.atomic():
            node = Node.objects.select_related("cluster").filter(pk=node_id).first()
            if node is None or node.status != NodeStatus.RUNNING:
                continue
            health = _locked_health(node, now)
            _judge(node, health, now)
            count += health.state == H.UNHEALTHY
    return count
