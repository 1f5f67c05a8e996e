"""The launch pipeline: the steps of every node (provisioning.steps), their events, and
failures, and the driver work of the worker steps.

Tasks and phone-home reports call into here; everything that changes a status goes
through states.transition(), and every step is idempotent so a redelivered task converges
instead of duplicating. Work for a worker is enqueued (provisioning.enqueue), never
called, so this module imports no task.
"""

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from observability import events, tracing
from observability.models import EventState
from provisioning import (
    addresses,
    api_forwards,
    enqueue,
    failures,
    faults,
    guest_seed,
    host_network,
    notify,
    placement,
    step_ledger,
    steps,
)
from provisioning.drivers import get_driver
from provisioning.drivers.base import DomainSpec, HypervisorDriver, VolumeSpec
from provisioning.models import BaseImage, Cluster, Node, NodeHealth, NodeStep
from provisioning.states import (
    CLUSTER_GONE,
    NODE_ACTIVE,
    NODE_DELETABLE,
    NODE_GONE,
    NODE_LAUNCHING,
    ClusterStatus,
    NodeStatus,
    transition,
)

C, N = ClusterStatus, NodeStatus


def progress(cluster: Cluster) -> int:
    """Share of the steps done over the cluster's active nodes, 0-100, rounded half up
    (as step_ledger.progress_after counts it in SQL)."""
    rows = NodeStep.objects.filter(node__cluster=cluster, node__status__in=NODE_ACTIVE)
    counts = rows.aggregate(
        total=Count("id"), done=Count("id", filter=Q(finished_at__isnull=False))
    )
    if not counts["total"]:
        return 100 if cluster.status in (C.RUNNING, C.DELETED) else 0
    return (200 * counts["done"] + counts["total"]) // (2 * counts["total"])


def driver_for(node: Node) -> HypervisorDriver:
    assert node.hypervisor is not None
    return tracing.traced(faults.wrap(get_driver(node.hypervisor.uri)), "driver")


def advance(node: Node, moves: list[tuple[str, str]]) -> bool:
    """Move the node's steps (step_ledger.move: each event written once), if it is still
    provisioning; False when it is not (deleted or failed meanwhile)."""
    with transaction.atomic(savepoint=False):
        ledger = step_ledger.read(pk=node.pk)
        if ledger is None or ledger.node.status != N.PROVISIONING:
            return False
        step_ledger.move(ledger, moves)
    return True


def node_ready(node: Node, when: datetime) -> None:
    ran_before = node.ready_at is not None  # only a running node has health
    if transition(node, [N.PROVISIONING], N.RUNNING, ready_at=when):
        if ran_before:
            # A retried node starts its health afresh: its first run's heartbeats stopped.
            NodeHealth.objects.filter(node=node).delete()
        if node.replaces_id is not None:
            replaced = Node.objects.filter(pk=node.replaces_id)
            for old in replaced:
                events.record(node.cluster, f"{node.name} is running: deleting {old.name}.")
            enqueue.delete_nodes(start_deleting(replaced))
        _next_rollout_move(node)
        refresh_cluster(node.cluster)


def _next_rollout_move(node: Node) -> None:
    """A node of a cluster being upgraded ran or failed: its rollout moves on (or stops)."""
    if node.cluster.upgrade_to_id is not None:
        enqueue.on_commit(enqueue.ROLL_UPGRADE, node.cluster_id)


def start_deleting(nodes: Iterable[Node]) -> list[int]:
    """Move the nodes to deleting (those that may be); their ids, for enqueue.delete_nodes."""
    now = timezone.now()
    return [n.pk for n in nodes if transition(n, NODE_DELETABLE, N.DELETING, progressed_at=now)]


def lock_cluster(cluster_id: int, *fields: str) -> tuple[Any, ...]:
    """Lock the cluster's row until commit (FOR NO KEY UPDATE: event inserts go on); its
    `fields` as the lock found them. What changes a node and writes its cluster's events
    takes it first, as step_ledger.read does, so writers queue in one order (the cluster,
    then its nodes), never deadlock."""
    locked = Cluster.objects.select_for_update(no_key=True).filter(pk=cluster_id)
    return tuple(locked.values_list("pk", *fields).get()[1:])


def fail_node(node: Node, step: str, code: str, message: str) -> None:
    """Fail the node (once), then give back what it holds, after commit, on a worker."""
    lock_cluster(node.cluster_id)
    if not transition(
        node,
        NODE_ACTIVE,
        N.FAILED,
        error_code=code,
        error_message=message[:500],
        progressed_at=timezone.now(),  # when it failed (the staff dashboard counts these)
    ):
        return
    NodeStep.objects.filter(node=node, step=step).update(failed=True)
    events.record(
        node.cluster,
        f"{node.name}: {steps.label(step) if step else 'launch'} failed: {message}",
        state=EventState.FAILED,
        node=node.name,
        step=step,
    )
    notify.node_failed(node, step)
    enqueue.release_node(node.pk)
    _next_rollout_move(node)
    if node.is_server:
        # Agents cannot join without their server: fail them now, so they give back
        # what they hold instead of waiting for the reaper.
        agents = Node.objects.with_step().filter(cluster=node.cluster, status__in=NODE_ACTIVE)
        for agent in agents:
            fail_node(
                agent,
                agent.step,
                failures.SERVER_FAILED,
                "The server node failed; this agent cannot join.",
            )
    refresh_cluster(node.cluster)


def refresh_cluster(cluster: Cluster) -> None:
    """Derive the cluster's status from its nodes and move it there (guarded)."""
    # Lock the row first: two nodes finishing at once would each read the other as still
    # provisioning (READ COMMITTED) and leave the cluster provisioning for ever. NO KEY
    # lets event inserts (FOR KEY SHARE on the cluster) go on meanwhile.
    cluster.status, cluster.ready_at, cluster.created_at = lock_cluster(
        cluster.pk, "status", "ready_at", "created_at"
    )
    if cluster.status in CLUSTER_GONE:
        return
    nodes = Node.objects.filter(cluster=cluster).exclude(status__in=NODE_GONE)
    states = list(nodes.values_list("is_server", "status"))
    if (True, N.FAILED) in states:
        target, reason = C.FAILED, "The server node failed."
    elif any(status in NODE_LAUNCHING for _, status in states):
        target, reason = C.PROVISIONING, ""
    elif any(status == N.FAILED for _, status in states):
        target, reason = C.DEGRADED, "An agent node failed; retry it or scale the pool."
    else:
        target, reason = C.RUNNING, ""
    if target == cluster.status:
        return
    extra: dict[str, Any] = {"status_reason": reason}
    first_ready = target == C.RUNNING and cluster.ready_at is None
    if first_ready:
        extra["ready_at"] = timezone.now()
    if transition(cluster, [cluster.status], target, **extra):
        message = f"Cluster {target}" + (f": {reason}" if reason else "")
        if first_ready:
            took = (cluster.ready_at - cluster.created_at).total_seconds()
            message = f"Cluster running in {took:.1f} s (the seed's mark: 90 s)"
        state = EventState.FAILED if target == C.FAILED else EventState.INFO
        # Running: every active node's steps are done. The row is locked (above), as
        # events.append asks.
        done = 100 if target == C.RUNNING else progress(cluster)
        events.append(cluster, [events.Entry(message, state, progress=done)])
        notify.cluster_changed(cluster)


# --- The worker steps' driver work --------------------------------------------------------


def import_image(node: Node, driver: HypervisorDriver) -> None:
    """A copy-on-write clone of the region's base volume becomes the node's disk."""
    cluster = node.cluster
    image = BaseImage.objects.get(version=node.version, region=cluster.region)
    assert node.hypervisor is not None
    driver.ensure_volume(
        VolumeSpec(
            pool=node.hypervisor.storage_pool,
            name=node.volume_name,
            capacity_gib=node.pool.size.disk_gib,
            backing_volume=image.volume_name,
        )
    )


def start_vm(node: Node, driver: HypervisorDriver) -> None:
    assert node.hypervisor is not None
    nic = host_network.attach(node, driver)
    size = node.pool.size
    driver.ensure_domain(
        DomainSpec(
            name=node.domain_name,
            vcpus=size.vcpus,
            memory_mib=size.memory_mib,
            disk_pool=node.hypervisor.storage_pool,
            disk_volume=node.volume_name,
            nics=(nic,),
            smbios_serial=guest_seed.smbios_serial(node),
            virtualisation=node.hypervisor.virtualisation,
        )
    )
    driver.start_domain(node.domain_name)


# One entry per worker step of the table (a test checks none is missing).
WORKER_STEPS: dict[str, Callable[[Node, HypervisorDriver], None]] = {
    "import_image": import_image,
    "start_vm": start_vm,
}


def run_worker_step(node: Node, step: str) -> None:
    """The driver work of worker step `step`, through the (fault-injecting) driver."""
    WORKER_STEPS[step](node, driver_for(node))


def redo_worker_steps(node: Node, driver: HypervisorDriver) -> None:
    """Every worker step again, in order (reconciliation re-creates a lost domain)."""
    for spec in steps.performed_by(steps.Performer.WORKER):
        WORKER_STEPS[spec.name](node, driver)


def load(node_id: int) -> Node | None:
    return (
        Node.objects.select_related(
            "cluster__region",
            "cluster__k3s_version",
            "cluster__network",
            "cluster__firewall",
            "pool__size",
            "hypervisor",
            "k3s_version",  # Node.version
            "port",  # its address and MAC, for the host's network
        )
        # Encrypted, so decrypted on every load, and no worker step reads them.
        .defer(*Cluster.pki_fields_from("cluster"), "hypervisor__credentials")
        .filter(pk=node_id)
        .first()
    )


def begin(node: Node) -> bool:
    """pending -> provisioning; True when the node is (now) provisioning."""
    return node.status == N.PROVISIONING or transition(node, [N.PENDING], N.PROVISIONING)


def release(node: Node) -> None:
    """Give back everything the node holds: domain, volume, IP, capacity. Idempotent."""
    if node.hypervisor is not None:
        driver = get_driver(node.hypervisor.uri)
        driver.undefine_domain(node.domain_name)
        driver.delete_volume(node.hypervisor.storage_pool, node.volume_name)
        # Before the address goes back: detach needs the node's MAC to look for its lease.
        lease_gone = host_network.detach(node, driver)
        addresses.release(node, quarantine=not lease_gone)
        api_forwards.release(node)
    else:
        addresses.release(node, quarantine=False)  # never on a host: no lease anywhere
    placement.release(node)


def finish_delete(node: Node) -> None:
    """deleting -> deleted, token revoked; the cluster follows when it was the last."""
    if not transition(node, [N.DELETING], N.DELETED, token_digest=""):
        return
    events.record(node.cluster, f"{node.name}: deleted", node=node.name)
    cluster = node.cluster
    remaining = Node.objects.filter(cluster=cluster).filter(~Q(status=N.DELETED)).exists()
    if not remaining and transition(cluster, [C.DELETING], C.DELETED, deleted_at=timezone.now()):
        events.record(cluster, "Cluster deleted; every resource given back.", progress=100)
        notify.cluster_changed(cluster)
