"""Reconciliation tasks: beat fans out one pass per reachable hypervisor."""

from celery import shared_task
from django.conf import settings

from provisioning import enqueue, reconcile
from provisioning.models import Hypervisor, HypervisorState

RECONCILE = "provisioning.reconcile"


@shared_task(name=RECONCILE)
def reconcile_all() -> None:
    # One task per host, so a slow or unreachable host delays no other; a pass still
    # queued when the next round starts has nothing left to add.
    period = settings.RECONCILE_SECONDS
    hosts = Hypervisor.objects.exclude(state=HypervisorState.OFFLINE)
    for pk in hosts.values_list("pk", flat=True):
        reconcile_hypervisor.apply_async((pk,), expires=period)


@shared_task(name="provisioning.reconcile_hypervisor", acks_late=True)
def reconcile_hypervisor(hypervisor_id: int) -> None:
    report = reconcile.reconcile_hypervisor(hypervisor_id)
    if report.recreated or report.removed_orphans:
        enqueue.sync_hypervisor(hypervisor_id)
