"""Reconciliation: bring each hypervisor back to what the database says it should run.

- A running node whose domain is missing gets its disk, network and domain back and is
  started: what autostart does after a host reboot, and what a restarted worker needs on
  libvirt's test driver, whose state lives only in the process holding the connection.
- A running node whose domain is shut off is started.
- Each tenant network with live nodes on the host is brought to its spec first (bridge,
  VXLAN peers, the namespace with dnsmasq and the metadata proxy): a rebooted host has
  lost its namespaces, and a peer may have come or gone while a sync was lost.
- A domain with the portal's prefix that no node owns is recorded for staff (OrphanDomain)
  and undefined, with its disk, once it has been orphaned for ORPHAN_GRACE_SECONDS.

Nodes the pipeline owns (pending, provisioning) and nodes being deleted are never
corrected; their domains are not orphans either. This talks to libvirt, so only Celery
tasks and the management command call it.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from networking.models import Network
from observability import events
from observability.models import EventState
from provisioning import host_network, pipeline
from provisioning.drivers import get_driver
from provisioning.drivers.base import DomainState, DriverError, HypervisorDriver
from provisioning.models import (
    DOMAIN_PREFIX,
    Hypervisor,
    Node,
    OrphanDomain,
    OrphanResolution,
    volume_for,
)
from provisioning.states import NODE_ACTIVE, NodeStatus

logger = logging.getLogger(__name__)
N = NodeStatus

# A failed node keeps its domain until pipeline.release has run, which gives the capacity
# claim back last; a domain still there after that has leaked.
OWNS_DOMAIN = Q(status__in=[*NODE_ACTIVE, N.DELETING]) | Q(status=N.FAILED, claimed_vcpus__gt=0)


@dataclass
class Report:
    """What one pass over one hypervisor found and did."""

    hypervisor: str
    recreated: list[str] = field(default_factory=list)  # node names
    started: list[str] = field(default_factory=list)  # node names
    new_orphans: list[str] = field(default_factory=list)  # domain names
    removed_orphans: list[str] = field(default_factory=list)  # domain names
    open_orphans: list[str] = field(default_factory=list)  # still within the grace period
    errors: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.recreated or self.started or self.new_orphans or self.removed_orphans)

    def __str__(self) -> str:
        parts = [
            f"{label}: {', '.join(names)}"
            for label, names in (
                ("re-created", self.recreated),
                ("started", self.started),
                ("new orphans", self.new_orphans),
                ("orphans removed", self.removed_orphans),
                ("orphans in grace period", self.open_orphans),
                ("errors", self.errors),
            )
            if names
        ]
        return f"{self.hypervisor}: {'; '.join(parts) or 'in sync'}"


def reconcile_hypervisor(hypervisor_id: int) -> Report:
    """Converge one hypervisor; a driver error is reported, never raised."""
    hypervisor = Hypervisor.objects.filter(pk=hypervisor_id).first()
    if hypervisor is None:
        return Report(f"hypervisor {hypervisor_id}", errors=["no longer exists"])
    report = Report(hypervisor.name)
    driver = get_driver(hypervisor.uri)
    try:
        found = {d.name: d for d in driver.list_domains(DOMAIN_PREFIX)}
    except DriverError as err:
        logger.warning("reconcile %s: cannot list domains: %s", hypervisor.name, err)
        report.errors.append(f"cannot list domains: {err}")
        return report
    _converge_networks(hypervisor, report)
    # Owners are read after the listing: a node deleted in between only looks orphaned
    # until the next pass, well within the grace period.
    owners = Node.objects.filter(OWNS_DOMAIN, hypervisor=hypervisor).select_related("cluster")
    owned = set()
    for node in owners:
        owned.add(node.domain_name)
        if node.status == N.RUNNING:
            _converge_node(node.pk, found.get(node.domain_name), hypervisor, driver, report)
    _handle_orphans(hypervisor, driver, sorted(set(found) - owned), report)
    return report


def _converge_networks(hypervisor: Hypervisor, report: Report) -> None:
    on_host = host_network.live_nodes().filter(hypervisor=hypervisor)
    for network in Network.objects.filter(pk__in=on_host.values("cluster__network")):
        try:
            host_network.sync(network, hypervisor)
        except DriverError as err:
            logger.warning("reconcile %s on %s: %s", network.libvirt_name, hypervisor.name, err)
            report.errors.append(f"network {network.libvirt_name}: {err}")


def _converge_node(
    node_id: int,
    domain: DomainState | None,
    hypervisor: Hypervisor,
    driver: HypervisorDriver,
    report: Report,
) -> None:
    if domain is not None and domain.state != "shutoff":
        return  # running; a paused domain was paused on purpose
    node = pipeline.load(node_id)
    if node is None or node.status != N.RUNNING or node.hypervisor_id != hypervisor.pk:
        return  # deleted or failed since the listing: no longer ours to start
    try:
        if domain is None:
            had_disk = driver.volume_exists(hypervisor.storage_pool, node.volume_name)
            pipeline.redo_worker_steps(node, driver)
            what = "domain missing" if had_disk else "domain and disk missing"
            done, fixed = "re-created and started", report.recreated
        else:
            driver.start_domain(node.domain_name)
            what, done, fixed = "domain shut off", "started", report.started
    except DriverError as err:
        logger.warning("reconcile %s on %s: %s", node.domain_name, hypervisor.name, err)
        report.errors.append(f"{node.name}: {err}")
        return
    fixed.append(node.name)
    events.record(
        node.cluster,
        f"{node.name}: {what} on {hypervisor.name}, {done} (reconciliation)",
        state=EventState.INFO,
        node=node.name,
    )


def _handle_orphans(
    hypervisor: Hypervisor, driver: HypervisorDriver, names: list[str], report: Report
) -> None:
    now = timezone.now()
    records = OrphanDomain.objects.filter(hypervisor=hypervisor, removed_at__isnull=True)
    # Gone, or owned again, before the grace period ended: nothing left to remove.
    records.exclude(name__in=names).update(removed_at=now, resolution=OrphanResolution.VANISHED)
    first_seen = dict(records.filter(name__in=names).values_list("name", "first_seen_at"))
    for name in names:
        if name not in first_seen:
            _, created = OrphanDomain.objects.get_or_create(
                hypervisor=hypervisor,
                name=name,
                removed_at=None,
                defaults={"first_seen_at": now, "last_seen_at": now},
            )
            if created:
                logger.warning("orphan domain %s on %s: no node owns it", name, hypervisor.name)
                report.new_orphans.append(name)
            first_seen[name] = now
        if _due(first_seen[name], now):
            _remove_orphan(hypervisor, driver, name, now, report)
        else:
            records.filter(name=name).update(last_seen_at=now)
            report.open_orphans.append(name)


def _due(first_seen: datetime, now: datetime) -> bool:
    return now - first_seen >= timedelta(seconds=settings.ORPHAN_GRACE_SECONDS)


def _remove_orphan(
    hypervisor: Hypervisor, driver: HypervisorDriver, name: str, now: datetime, report: Report
) -> None:
    try:
        driver.undefine_domain(name)
        driver.delete_volume(hypervisor.storage_pool, volume_for(name))
    except DriverError as err:
        logger.warning("orphan domain %s on %s: removal failed: %s", name, hypervisor.name, err)
        report.errors.append(f"{name}: {err}")
        return
    OrphanDomain.objects.filter(hypervisor=hypervisor, name=name, removed_at__isnull=True).update(
        removed_at=now, last_seen_at=now, resolution=OrphanResolution.REMOVED
    )
    logger.warning("orphan domain %s on %s removed after the grace period", name, hypervisor.name)
    report.removed_orphans.append(name)
