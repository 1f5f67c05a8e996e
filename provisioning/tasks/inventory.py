"""Inventory tasks: beat syncs every hypervisor; the pipeline syncs one after a domain change."""

from celery import shared_task
from django.conf import settings

from provisioning import enqueue, inventory
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
