"""The supercluster inventory: what each hypervisor has, and whether it takes new nodes.

`sync_hypervisor` talks to libvirt, so only Celery tasks and management commands call it;
views read what it stored. Every write is a conditional UPDATE, never a read-modify-write,
because placement claims capacity on the same rows at the same time.

Offline: three failed syncs in a row take an *active* host offline, and the next successful
sync brings it back to active. Only the sync sets `offline` (staff cannot cordon or uncordon
an offline host, and the admin shows the state read-only), so an offline host was active
before. A cordoned or maintenance host keeps the state staff gave it while unreachable (it
takes no new nodes either way); its failures and last error are still recorded and shown.
"""

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Least
from django.utils import timezone

from portal import audit
from portal.actor import Actor
from portal.errors import Conflict
from provisioning.drivers import get_driver
from provisioning.drivers.base import DriverError
from provisioning.images import replicas as images
from provisioning.models import DOMAIN_PREFIX, HostSample, Hypervisor, HypervisorState, VirtType
from provisioning.states import transition

logger = logging.getLogger(__name__)

OFFLINE_AFTER_FAILURES = 3
# Keeps the small counter of a host that stays down for weeks from overflowing.
MAX_COUNTED_FAILURES = 1000
SAMPLE_EVERY, SAMPLES_KEPT = timedelta(minutes=1), timedelta(hours=24)
# The audit action and message word for a move into each state.
_VERBS = {HypervisorState.CORDONED: "cordon", HypervisorState.ACTIVE: "uncordon"}


class HypervisorStateConflict(Conflict):
    """The host is in a state the requested change cannot start from."""

    code = "state_conflict"


def sync_hypervisor(hypervisor_id: int) -> None:
    """Read the host's facts through its driver and store them, or count the failure."""
    hosts = Hypervisor.objects.filter(pk=hypervisor_id)
    host = hosts.select_related("region").first()
    if host is None:
        return  # deleted since the sync was queued
    driver = get_driver(host.uri)
    try:
        facts = driver.host_facts()
        detected = None if host.virt_type else driver.virtualisation_defaults()
        replicas = images.check_replicas(host, driver)
    except DriverError as err:
        _record_failure(host, err)
        return
    with transaction.atomic():
        if detected is not None and detected.virt_type in VirtType.values:
            # Only blanks: what staff set (add_hypervisor, the staff API) stays.
            hosts.filter(virt_type="").update(
                virt_type=detected.virt_type, cpu_mode=host.cpu_mode or detected.cpu_mode
            )
        images.record_replicas(host, replicas)
        hosts.update(
            vcpus_total=facts.vcpus,
            memory_mib_total=facts.memory_mib,
            domain_count=sum(name.startswith(DOMAIN_PREFIX) for name in facts.domain_names),
            synced_at=timezone.now(),
            sync_failures=0,
            last_error="",
        )
        _sample(host.pk, timezone.now())
        if transition(host, [HypervisorState.OFFLINE], HypervisorState.ACTIVE):
            logger.info("hypervisor %s answers again: back to active", hypervisor_id)


def _sample(host_id: int, now: datetime) -> None:
    """The host's allocation now, for its page's chart: one a minute, a day of them."""
    samples = HostSample.objects.filter(hypervisor_id=host_id)
    if samples.filter(at__gt=now - SAMPLE_EVERY).exists():
        return
    host = Hypervisor.objects.get(pk=host_id)
    samples.create(
        hypervisor=host,
        at=now,
        vcpus_allocated=host.vcpus_allocated,
        memory_mib_allocated=host.memory_mib_allocated,
        domains=host.domain_count,
    )
    samples.filter(at__lt=now - SAMPLES_KEPT).delete()


def _record_failure(host: Hypervisor, err: DriverError) -> None:
    hosts = Hypervisor.objects.filter(pk=host.pk)
    max_length = Hypervisor._meta.get_field("last_error").max_length or 500
    with transaction.atomic():
        hosts.update(
            sync_failures=Least(F("sync_failures") + 1, Value(MAX_COUNTED_FAILURES)),
            last_error=str(err)[:max_length],
        )
        went_offline = transition(
            host,
            [HypervisorState.ACTIVE],
            HypervisorState.OFFLINE,
            when=Q(sync_failures__gte=OFFLINE_AFTER_FAILURES),
        )
    if went_offline:
        logger.warning("hypervisor %s is offline: %s", host.pk, err)


def cordon(actor: Actor, hypervisor: Hypervisor) -> bool:
    """Stop placing new nodes on an active host. False when it was already cordoned."""
    return _move(actor, hypervisor, HypervisorState.ACTIVE, HypervisorState.CORDONED)


def uncordon(actor: Actor, hypervisor: Hypervisor) -> bool:
    """Let a cordoned host take new nodes again. False when it was already active."""
    return _move(actor, hypervisor, HypervisorState.CORDONED, HypervisorState.ACTIVE)


def _move(
    actor: Actor, hypervisor: Hypervisor, source: HypervisorState, target: HypervisorState
) -> bool:
    actor.require_staff()
    hosts = Hypervisor.objects.filter(pk=hypervisor.pk)
    with transaction.atomic():
        if transition(hypervisor, [source], target):
            audit.record(f"hypervisor.{_VERBS[target]}", hypervisor, actor)
            return True
    current = hosts.values_list("state", flat=True).get()
    hypervisor.state = current
    if current == target:
        return False
    raise HypervisorStateConflict(
        f"{hypervisor.name} is {current}: only a host that is {source} can be {_VERBS[target]}ed."
    )
