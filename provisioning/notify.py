"""What organisations' webhooks hear of their clusters: the payloads, emitted in the
transaction of the change that decided them (observability.webhooks.outbox), so a
delivery exists exactly when the change committed. Deliveries about one cluster reach
each webhook in the order they were emitted."""

from typing import Any

from observability.webhooks.models import EventType
from observability.webhooks.outbox import emit
from provisioning.models import Cluster, Node
from provisioning.states import ClusterStatus

E = EventType
CLUSTER_EVENTS = {
    ClusterStatus.RUNNING: E.CLUSTER_RUNNING,
    ClusterStatus.FAILED: E.CLUSTER_FAILED,
    ClusterStatus.DELETED: E.CLUSTER_DELETED,
}


def _cluster(cluster: Cluster) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": str(cluster.uuid),
        "name": cluster.name,
        "status": cluster.status,
        "region": cluster.region.slug,
    }
    if cluster.status == ClusterStatus.FAILED:
        shown["reason"] = cluster.status_reason
    return shown


def _emit(cluster: Cluster, event: EventType, data: dict[str, Any]) -> None:
    data = {"cluster": _cluster(cluster), **data}
    emit(cluster.organisation, event, data, subject=str(cluster.uuid))


def cluster_changed(cluster: Cluster) -> None:
    """The cluster has just moved to its status: running, failed and deleted are events."""
    event = CLUSTER_EVENTS.get(ClusterStatus(cluster.status))
    if event is not None:
        _emit(cluster, event, {})


def node_failed(node: Node, step: str) -> None:
    error = {"code": node.error_code, "message": node.error_message}
    shown = {"name": node.name, "status": node.status, "is_server": node.is_server}
    _emit(node.cluster, E.NODE_FAILED, {"node": {**shown, "step": step, "error": error}})


def node_unhealthy(node: Node, reason: str) -> None:
    health = {"state": "unhealthy", "reason": reason}
    _emit(node.cluster, E.NODE_UNHEALTHY, {"node": {"name": node.name, "health": health}})
