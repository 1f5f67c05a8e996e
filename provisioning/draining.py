"""Draining a host: staff empty a hypervisor by moving each node on it to another host.

A move is the healer's surge (services.replace_node): a node in the same pool placed by
the usual rules (the cluster's spread, never a cordoned host, which a draining host is),
launched, and the old node deleted once it runs. One move at a time per cluster, so a
cluster never loses more than one node's worth of room at once; clusters move in
parallel. A server node cannot move (a single-server cluster keeps its datastore on it):
it holds the drain, shown as blocked, as does a node whose replacement failed. Cancelling
stops new moves; those under way finish. An emptied host stops draining and stays
cordoned, ready for maintenance.
"""

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from portal import audit
from portal.actor import Actor
from portal.errors import Invalid
from provisioning import enqueue, healing, inventory, services
from provisioning.models import Hypervisor, HypervisorState, Node
from provisioning.states import NODE_DELETABLE, NODE_LAUNCHING


@dataclass
class Progress:
    left: list[str] = field(default_factory=list)  # nodes still on the host
    moving: list[str] = field(default_factory=list)  # their replacements under way
    blocked: dict[str, str] = field(default_factory=dict)  # node: why it cannot move


def _on_host(host: Hypervisor) -> list[Node]:
    """The nodes still on the host (not yet deleting), each with its replacement if any."""
    nodes = Node.objects.filter(hypervisor=host, status__in=NODE_DELETABLE)
    return list(nodes.select_related("cluster", "replaced_by").order_by("id"))


def _replacement(node: Node) -> Node | None:
    return getattr(node, "replaced_by", None)  # the reverse one-to-one raises when absent


def _stop(host: Hypervisor, action: str, actor: Actor) -> bool:
    """End the host's drain, audited as `action`; False when it was not draining."""
    with transaction.atomic():
        hosts = Hypervisor.objects.filter(pk=host.pk).exclude(draining_since=None)
        if not hosts.update(draining_since=None):
            return False
        audit.record(action, host, actor)
    return True


def progress(host: Hypervisor) -> Progress:
    found = Progress()
    for node in _on_host(host):
        found.left.append(node.name)
        replacement = _replacement(node)
        if node.is_server:
            found.blocked[node.name] = "a server node does not move (its datastore is on it)"
        elif replacement is not None and replacement.status in NODE_LAUNCHING:
            found.moving.append(replacement.name)
        elif replacement is not None:
            found.blocked[node.name] = f"its replacement {replacement.name} {replacement.status}"
    return found


def drain(actor: Actor, hypervisor: Hypervisor) -> bool:
    """Cordon the host (if it is active) and start moving its nodes away; False when it
    was draining already."""
    actor.require_staff()
    with transaction.atomic():
        if hypervisor.state == HypervisorState.ACTIVE:
            inventory.cordon(actor, hypervisor)
        elif hypervisor.state != HypervisorState.CORDONED:
            raise inventory.HypervisorStateConflict(
                f"{hypervisor.name} is {hypervisor.state}: only an active or cordoned host "
                "can be drained."
            )
        hosts = Hypervisor.objects.filter(pk=hypervisor.pk)
        started = hosts.filter(draining_since=None).update(draining_since=timezone.now())
        if started:
            audit.record("hypervisor.drain", hypervisor, actor)
            enqueue.on_commit(enqueue.DRAIN_HOST, hypervisor.pk)
    return bool(started)


def cancel(actor: Actor, hypervisor: Hypervisor) -> bool:
    """Stop starting moves (those under way finish); False when it was not draining."""
    actor.require_staff()
    return _stop(hypervisor, "hypervisor.drain_cancel", actor)


def step(host_id: int) -> list[str]:
    """Start the moves a draining host allows now; the names of the nodes moved."""
    host = Hypervisor.objects.filter(pk=host_id).exclude(draining_since=None).first()
    if host is None:
        return []
    nodes = _on_host(host)
    if not nodes:
        _stop(host, "hypervisor.drained", Actor.system())
        return []
    moved, busy = [], set()
    for node in nodes:
        cluster = node.cluster
        if node.is_server or cluster.pk in busy or _replacement(node) is not None:
            continue
        busy.add(cluster.pk)
        if healing.in_flight(cluster):
            continue
        try:
            services.replace_node(Actor.system(), node, f"host {host.name} is draining")
        except Invalid as error:
            why = f"Cannot move {node.name} off {host.name} yet: {error.message}"
            healing.say_once(cluster, why)
        else:
            moved.append(node.name)
    return moved


def step_all() -> int:
    """Beat: a step of every draining host; how many moves started."""
    hosts = Hypervisor.objects.exclude(draining_since=None).values_list("pk", flat=True)
    return sum(len(step(host_id)) for host_id in hosts)
