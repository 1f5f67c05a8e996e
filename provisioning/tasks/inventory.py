"""Inventory tasks: beat syncs every hypervisor; the pipeline syncs one after a domain change."""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from provisioning import draining, enqueue, inventory
from provisioning.models import Hypervisor

SYNC_INVENTORY = "provisioning.sync_inventory"


@shared_task(name=SYNC_INVENTORY)
def sync_inventory() -> None:
    # One task per host, so a slow or unreachable host delays no other and workers share
    # the round; a sync still queued when the next round starts has nothing left to add.
    period = settings.INVENTORY_SYNC_SECONDS
    for pk in Hypervisor.objects.values_list("pk", flat=True):
        sync_hypervisor.apply_async((pk,), expires=period)


@shared_task(name=enqueue.SYNC_HYPERVISOR, acks_late=True)
def sync_hypervisor(hypervisor_id: int) -> None:
    inventory.sync_hypervisor(hypervisor_id)


PING_AGENTS = "provisioning.ping_agents"
AGENT_PING = "provisioning.agent_ping"


@shared_task(name=PING_AGENTS)
def ping_agents() -> None:
    """Ask every host's agent to answer (routed to host.<name> with HOST_QUEUES)."""
    period = settings.AGENT_PING_SECONDS
    for pk in Hypervisor.objects.values_list("pk", flat=True):
        agent_ping.apply_async((pk,), expires=period)


@shared_task(name=AGENT_PING, ignore_result=True)
def agent_ping(hypervisor_id: int) -> None:
    """Run by the host's agent: it is alive and takes work (placement reads the stamp)."""
    Hypervisor.objects.filter(pk=hypervisor_id).update(agent_seen_at=timezone.now())


@shared_task(name="provisioning.drain_hosts", ignore_result=True)
def drain_hosts() -> int:
    """Beat: the next moves of every draining host (provisioning.draining)."""
    return draining.step_all()


@shared_task(name=enqueue.DRAIN_HOST, ignore_result=True)
def drain_host(hypervisor_id: int) -> None:
    draining.step(hypervisor_id)
