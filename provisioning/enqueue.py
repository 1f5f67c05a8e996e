"""Asking workers to do something: every task of provisioning is enqueued from here.

Messages carry ids only, and leave when the caller's transaction commits (at once when
there is none), so a worker never reads a row that is not there yet. `robust`: a broker
outage is logged, not raised; the reaper re-drives or fails what did not start.

Tasks are addressed by name (a Celery signature), so this module never imports the
tasks and services, the pipeline and the tasks can all use it without a cycle.
"""

from collections.abc import Iterable
from typing import Any

from celery import current_app
from django.core.cache import cache
from django.db import transaction

from provisioning import steps

LAUNCH_CLUSTER = "provisioning.launch_cluster"
RUN_STEP = "provisioning.run_step"
RELEASE_NODE = "provisioning.release_node"
DELETE_NODE = "provisioning.delete_node"
SIMULATE_GUEST = "provisioning.simulate_guest"
SYNC_HYPERVISOR = "provisioning.sync_hypervisor"
SYNC_HOST_NETWORK = "provisioning.sync_host_network"
DRAIN_HOST = "provisioning.drain_host"
ROLL_UPGRADE = "provisioning.roll_upgrade"
SYNC_COALESCE_SECONDS = 2


def send(name: str, *args: Any, **options: Any) -> None:
    """Send task `name` now (eager in tests, as a registered task's apply_async is)."""
    current_app.signature(name, args=args, **options).apply_async()


def on_commit(name: str, *args: Any, **options: Any) -> None:
    transaction.on_commit(lambda: send(name, *args, **options), robust=True)


def launch_cluster(cluster_id: int) -> None:
    on_commit(LAUNCH_CLUSTER, cluster_id)


def run_step(node_id: int, step: str) -> None:
    on_commit(RUN_STEP, node_id, step)


def launch_nodes(node_ids: Iterable[int]) -> None:
    """Start (or restart) the nodes' steps from the first."""
    for node_id in node_ids:
        run_step(node_id, steps.first().name)


def release_node(node_id: int) -> None:
    on_commit(RELEASE_NODE, node_id)


def delete_nodes(node_ids: Iterable[int]) -> None:
    for node_id in node_ids:
        on_commit(DELETE_NODE, node_id)


def simulate_guest(node_id: int, index: int = 0, countdown: float = 0.0) -> None:
    on_commit(SIMULATE_GUEST, node_id, index, countdown=countdown)


def sync_hypervisor(hypervisor_id: int) -> None:
    on_commit(SYNC_HYPERVISOR, hypervisor_id)


def sync_hypervisor_soon(hypervisor_id: int) -> None:
    """The host's domains changed: sync it once, SYNC_COALESCE_SECONDS from now, however
    many of its nodes start or go meanwhile (a batch of launches starts many at once)."""

    def ask() -> None:
        # The mark lasts as long as the wait: a change after the sync was read asks again.
        if cache.add(f"sync-soon:{hypervisor_id}", 1, timeout=SYNC_COALESCE_SECONDS):
            send(SYNC_HYPERVISOR, hypervisor_id, countdown=SYNC_COALESCE_SECONDS)

    transaction.on_commit(ask, robust=True)


def sync_host_network(hypervisor_id: int, network_id: int) -> None:
    on_commit(SYNC_HOST_NETWORK, hypervisor_id, network_id)
