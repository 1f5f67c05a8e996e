"""Rolling K3s upgrades: to a newer version only, never skipping a minor, server first.

The server is upgraded in place: a single-server cluster keeps its datastore on it, so it
keeps its VM, address and disk. Its heartbeat answer asks the agent for the new version
(`upgrade_to`); the agent re-runs K3s' install script with it (K3s' own manual upgrade) and
its heartbeats then report the version it runs. Then each agent node is replaced by a
surge on the new version's base image (services.replace_node: the new node first, the old
one deleted once the new one runs), one at a time. Kubernetes' skew rule holds throughout:
no kubelet is newer than the API server.

Every step is derived from the rows (the target on the cluster, each node's version), so
a worker restarted mid-rollout resumes where it was (beat calls `step_all`). A failure
stops the rollout, the cluster still serving: a replacement that failed (the cluster is
degraded; retry the node, then ask again), or a server that does not report the new
version within SERVER_UPGRADE_TIMEOUT. Asking again for the same target resumes.
"""

import re
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from observability import events
from observability.models import EventState
from portal import audit
from portal.actor import Action, Actor
from portal.errors import Conflict, Invalid
from provisioning import enqueue, healing, recently, services
from provisioning.models import BaseImage, Cluster, K3sVersion, Node
from provisioning.states import NODE_GONE, ClusterStatus, NodeStatus, transition

SERVER_UPGRADE_TIMEOUT = timedelta(minutes=10)
VERSION = re.compile(r"^v(\d+)\.(\d+)\.(\d+)\+k3s(\d+)$")


def parsed(version: K3sVersion) -> tuple[int, ...]:
    match = VERSION.match(version.version)
    return tuple(int(part) for part in match.groups()) if match else (0,)


def skew_problem(current: K3sVersion, target: K3sVersion) -> str | None:
    """Why K3s may not go from `current` to `target` (a downgrade, a skipped minor), or None."""
    have, wanted = parsed(current), parsed(target)
    if wanted <= have:
        return f"{target} is not newer than {current}: no downgrades."
    if wanted[0] != have[0] or wanted[1] > have[1] + 1:
        return f"{target} skips a minor version: go to {have[0]}.{have[1] + 1} first."
    return None


def problem(cluster: Cluster, target: K3sVersion) -> str | None:
    """Why `cluster` cannot go to `target`, or None."""
    why = skew_problem(cluster.k3s_version, target)
    if why is None and not BaseImage.objects.filter(version=target, region=cluster.region).exists():
        why = f"{target} has no base image in region {cluster.region}."
    return why


def _imaged(region_id: int) -> list[K3sVersion]:
    return list(K3sVersion.objects.filter(images__region_id=region_id).distinct())


# The versions with a base image in a region, as read at most this long ago in this process:
# a published image is offered within seconds; starting an upgrade checks afresh (problem).
OFFERED_SECONDS = 10.0
_offered = recently.Kept(OFFERED_SECONDS, _imaged)


def available(cluster: Cluster) -> list[K3sVersion]:
    """The versions this cluster may be upgraded to now, newest first."""
    allowed = (
        v for v in _offered(cluster.region_id) if skew_problem(cluster.k3s_version, v) is None
    )
    return sorted(allowed, key=parsed, reverse=True)


def start(actor: Actor, cluster: Cluster, target: K3sVersion) -> None:
    """Begin (or resume, for the same target) a rolling upgrade."""
    actor.require(Action.CHANGE, cluster.organisation)
    with transaction.atomic():
        cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
        resuming = cluster.upgrade_to_id == target.pk
        if cluster.upgrade_to_id is not None and not resuming:
            raise Conflict(f"An upgrade to {cluster.upgrade_to} is under way.")
        if cluster.status not in (ClusterStatus.RUNNING, ClusterStatus.DEGRADED):
            raise Conflict(f"The cluster is {cluster.status}: upgrade a running cluster.")
        why = None if resuming else problem(cluster, target)
        if why:
            raise Invalid({"k3s_version": why})
        Cluster.objects.filter(pk=cluster.pk).update(
            upgrade_to=target, upgrade_started_at=timezone.now(), upgrade_error=""
        )
        verb = "Resuming the upgrade" if resuming else "Upgrading"
        events.record(cluster, f"{verb} to {target}: the server first, then each agent.")
        audit.record(
            "cluster.upgrade",
            cluster,
            actor,
            organisation=cluster.organisation,
            before=cluster.k3s_version.version,
            after=target.version,
        )
    enqueue.on_commit(enqueue.ROLL_UPGRADE, cluster.pk)


def wanted_by(node: Node) -> K3sVersion | None:
    """The version a running server should upgrade itself to now (its heartbeat answer)."""
    cluster = node.cluster
    target = cluster.upgrade_to
    if not node.is_server or target is None or cluster.upgrade_error:
        return None
    return target if node.version != target else None


def reported(node: Node, version: str) -> None:
    """A heartbeat says which K3s the node runs: the server's in-place upgrade lands."""
    if not version or version == node.version.version:
        return
    known = K3sVersion.objects.filter(version=version).first()
    if known is not None and known == wanted_by(node):
        node.k3s_version = known  # the caller's node too: its heartbeat answer reads it
        node.save(update_fields=["k3s_version"])
        events.record(
            node.cluster, f"{node.name} runs {known} (upgraded in place).", node=node.name
        )
        enqueue.on_commit(enqueue.ROLL_UPGRADE, node.cluster_id)


def step(cluster_id: int) -> str:
    """The next move of the cluster's upgrade; what it is waiting for, in a word."""
    with transaction.atomic():
        cluster = Cluster.objects.select_for_update().filter(pk=cluster_id).first()
        if cluster is None or cluster.upgrade_to is None or cluster.upgrade_error:
            return "idle"
        target = cluster.upgrade_to
        nodes = list(cluster.nodes.exclude(status__in=NODE_GONE))
        failed = [n for n in nodes if n.replaces_id and n.status == NodeStatus.FAILED]
        if failed:
            return _stop(cluster, f"{failed[0].name} on {target} failed ({failed[0].error_code})")
        server = next(n for n in nodes if n.is_server)
        if server.version != target:
            assert cluster.upgrade_started_at is not None
            if timezone.now() - cluster.upgrade_started_at > SERVER_UPGRADE_TIMEOUT:
                return _stop(cluster, f"{server.name} did not report {target} in time")
            return "server"
        if healing.in_flight(cluster):
            return "moving"
        old = [n for n in nodes if n.version != target and n.status == NodeStatus.RUNNING]
        if old:
            services.replace_node(Actor.system(), old[0], f"upgrade to {target}", target)
            return "moving"
        if any(n.version != target for n in nodes):
            return "waiting"  # an old node still launching or failed: it settles first
        Cluster.objects.filter(pk=cluster.pk).update(
            k3s_version=target, upgrade_to=None, upgrade_started_at=None
        )
        events.record(cluster, f"Upgraded to {target}.", state=EventState.DONE)
        audit.record("cluster.upgraded", cluster, Actor.system(), organisation=cluster.organisation)
        return "done"


def _stop(cluster: Cluster, why: str) -> str:
    message = f"Upgrade to {cluster.upgrade_to} stopped: {why}. Ask for it again to resume."
    Cluster.objects.filter(pk=cluster.pk).update(upgrade_error=message[:300])
    transition(cluster, [ClusterStatus.RUNNING], ClusterStatus.DEGRADED, status_reason=message)
    events.record(cluster, message, state=EventState.FAILED)
    return "stopped"


def step_all() -> int:
    """Beat: a step of every upgrade under way; how many are."""
    under_way = Cluster.objects.filter(upgrade_to__isnull=False, upgrade_error="")
    ids = list(under_way.values_list("pk", flat=True))
    for cluster_id in ids:
        step(cluster_id)
    return len(ids)
