"""Celery tasks of tenant networking: thin, ids only, idempotent."""

from celery import shared_task

from networking import hosts
from networking.models import Firewall
from provisioning.drivers.base import TransientDriverError


@shared_task(
    name="networking.rollout_firewall",
    acks_late=True,
    autoretry_for=(TransientDriverError,),
    retry_backoff=True,
    max_retries=5,
)
def rollout_firewall(firewall_id: int) -> None:
    firewall = Firewall.objects.select_related("network").filter(pk=firewall_id).first()
    if firewall is not None:  # deleted meanwhile: nothing left to roll out
        hosts.roll_out(firewall)
