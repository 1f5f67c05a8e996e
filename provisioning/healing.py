"""Self-healing: an agent node unhealthy for its cluster's `heal_after_seconds` is replaced.

Replacement is a surge (services.replace_node): the new node is launched first and the
old one deleted only once the new one runs, at most `heal_max_parallel` at a time per
cluster. The server node is not replaced: a single-server cluster keeps its datastore on
it, and a new server would be a new, empty cluster (its unhealthy state stays on the page
and in the alerts for someone to look at).
"""

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction

from observability import events
from portal.actor import Actor
from portal.errors import Invalid
from provisioning import services
from provisioning.models import Cluster, HealthState, Node
from provisioning.states import CLUSTER_LIVE, NODE_LAUNCHING, NodeStatus

logger = logging.getLogger(__name__)


def due(now: datetime) -> dict[int, list[Node]]:
    """Per cluster, its running agents unhealthy for longer than its policy allows and not
    yet being replaced, longest unhealthy first."""
    candidates = (
        Node.objects.filter(
            status=NodeStatus.RUNNING,
            is_server=False,
            health__state=HealthState.UNHEALTHY,
            replaced_by__isnull=True,
            cluster__heal_enabled=True,
            cluster__status__in=CLUSTER_LIVE,
        )
        .select_related("cluster", "health")
        .order_by("health__changed_at", "id")
    )
    found: dict[int, list[Node]] = defaultdict(list)
    for node in candidates:
        if node.health.changed_at <= now - timedelta(seconds=node.cluster.heal_after_seconds):
            found[node.cluster_id].append(node)
    return found


def in_flight(cluster: Cluster) -> int:
    """Replacements of this cluster still launching."""
    return Node.objects.filter(
        cluster=cluster, replaces__isnull=False, status__in=NODE_LAUNCHING
    ).count()


def heal(now: datetime) -> list[str]:
    """Start the replacements that are due; the names of the nodes being replaced."""
    replaced = []
    for nodes in due(now).values():
        cluster = nodes[0].cluster
        room = cluster.heal_max_parallel - in_flight(cluster)
        for node in nodes[: max(room, 0)]:
            reason = f"unhealthy since {node.health.changed_at:%H:%M:%S}: {node.health.reason}"
            try:
                services.replace_node(Actor.system(), node, reason)
            except Invalid as error:
                say_once(cluster, f"Cannot replace {node.name} yet: {error.message}")
            else:
                replaced.append(node.name)
    return replaced


def say_once(cluster: Cluster, message: str) -> None:
    """Say so once, not at every check: the healer tries again while the node stays bad."""
    with transaction.atomic():
        last = cluster.events.order_by("-id").values_list("message", flat=True).first()
        if last != message:
            events.record(cluster, message)
    logger.warning("%s: %s", cluster.name, message)
