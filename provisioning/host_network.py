"""The worker side: tenant networks and firewalls on hypervisors, through the driver.

Only Celery tasks call this. Every function recomputes what a host should have from the
database (the live nodes on it), so a repeated call converges; concurrent ones on one network
and host take turns on that pair's lock row (`HostNetworkLock`, SELECT ... FOR UPDATE), held
across the recompute and the driver call, so two workers never apply stale DHCP entries over
each other. A row lock, not a PostgreSQL advisory lock: it works the same for workers in
other processes and on other machines, ends with the transaction (or a dead connection), and
on SQLite the IMMEDIATE transaction it runs in already serialises every writer.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from networking import ipam, rules
from networking.models import Firewall, FirewallRollout, HostNetworkLock, Network
from observability import events
from observability.models import EventState
from provisioning import addresses, api_forwards, enqueue
from provisioning.drivers import get_driver
from provisioning.drivers.base import (
    DhcpHost,
    FirewallRuleSpec,
    HypervisorDriver,
    NetworkSpec,
    NicSpec,
    NwfilterSpec,
    PermanentDriverError,
    PortForward,
    is_test_uri,
)
from provisioning.models import Cluster, Hypervisor, Node
from provisioning.states import NODE_GONE


@contextmanager
def locked(network: Network, hypervisor: Hypervisor) -> Iterator[None]:
    """Hold the (network, hypervisor) lock row for the block: one worker at a time changes
    that network on that host."""
    lock = (
        HostNetworkLock.objects.select_for_update()
        .filter(network=network, hypervisor=hypervisor)
        .values_list("pk")
    )
    with transaction.atomic():
        if not list(lock):  # the pair's first change: its row, then its lock
            HostNetworkLock.objects.get_or_create(network=network, hypervisor=hypervisor)
            lock.get()
        yield


def live_nodes() -> QuerySet[Node]:
    """With what a network's DHCP leases read (network_spec); counts and subqueries of it
    join nothing. Not the clusters' CA keys and join tokens: each would be decrypted, for
    every node on the host, at every attach."""
    return (
        Node.objects.exclude(status__in=NODE_GONE)
        .select_related("cluster", "port")
        .defer(*Cluster.pki_fields_from("cluster"), "console_tail")
    )


def peer_hosts(network: Network, hypervisor: Hypervisor) -> QuerySet[Hypervisor]:
    """The other hosts with live nodes of `network`: its VXLAN segment reaches them."""
    on_network = live_nodes().filter(cluster__network=network)
    return Hypervisor.objects.filter(nodes__in=on_network).exclude(pk=hypervisor.pk).distinct()


def network_spec(
    network: Network, nodes: Iterable[Node], hypervisor: Hypervisor | None = None
) -> NetworkSpec:
    """The network on `hypervisor`, with one static lease per node given (as live_nodes()
    loads them) that holds an address, and the segment's peers."""
    addressed = [n for n in nodes if n.port is not None]
    hosts = [
        DhcpHost(
            mac=n.port.mac,
            ip=n.port.address,
            name=n.domain_name,
            lease_seconds=settings.DHCP_LEASE_SECONDS,
        )
        for n in addressed
        if n.port is not None
    ]
    forwards = [
        PortForward(n.api_port, n.port.address, api_forwards.API_PORT)
        for n in addressed
        if n.api_port is not None and n.port is not None
    ]
    return NetworkSpec(
        name=network.libvirt_name,
        bridge=network.bridge,
        segment_id=network.segment_id,
        gateway=network.gateway,
        prefix=int(network.cidr.split("/")[1]),
        dhcp_hosts=tuple(sorted(hosts, key=lambda h: tuple(map(int, h.ip.split("."))))),
        uuid=str(network.uuid),
        underlay=hypervisor.underlay_address if hypervisor else None,
        peers=tuple(
            sorted(
                address
                for address in peer_hosts(network, hypervisor).values_list(
                    "underlay_address", flat=True
                )
                if address
            )
            if hypervisor
            else ()
        ),
        egress=network.egress,
        public_address=hypervisor.public_address if hypervisor else None,
        forwards=tuple(sorted(forwards, key=lambda f: f.port)),
    )


def rule_spec(rule: rules.Rule) -> FirewallRuleSpec:
    ports = rule.get("ports")
    first, last = rules.parse_ports(ports) if ports else (None, None)
    return FirewallRuleSpec(
        direction=rule["direction"],
        protocol=rule["protocol"],
        port_min=first,
        port_max=last,
        cidr=rule["cidr"],
    )


def nwfilter_spec(firewall: Firewall) -> NwfilterSpec:
    return NwfilterSpec(
        name=firewall.nwfilter_name,
        network_cidr=firewall.network.cidr,
        rules=tuple(rule_spec(r) for r in firewall.rules),
    )


def not_enforced_reason(driver: HypervisorDriver) -> str:
    if is_test_uri(driver.uri):
        return "test driver has no nwfilter API"
    return "this host's driver cannot enforce firewalls"


def _apply_firewall(firewall: Firewall, hypervisor: Hypervisor, driver: HypervisorDriver) -> bool:
    """Define the nwfilter on the host when it can; record honestly what happened."""
    enforced = driver.capabilities.enforces_firewalls
    if enforced:
        driver.ensure_nwfilter(nwfilter_spec(firewall))
    _record_rollout(
        firewall,
        hypervisor,
        revision=firewall.revision,
        enforced=enforced,
        reason="" if enforced else not_enforced_reason(driver),
    )
    return enforced


def _record_rollout(firewall: Firewall, hypervisor: Hypervisor, **values: Any) -> None:
    """One UPDATE when the host has a rollout row (every node after a host's first);
    update_or_create, which also settles a concurrent first insert, when it has none."""
    mine = FirewallRollout.objects.filter(firewall=firewall, hypervisor=hypervisor)
    if not mine.update(**values, updated_at=timezone.now()):
        FirewallRollout.objects.update_or_create(
            firewall=firewall, hypervisor=hypervisor, defaults=values
        )


def attach(node: Node, driver: HypervisorDriver) -> NicSpec:
    """Before the node's domain is defined: its network (and firewall) on its hypervisor."""
    hypervisor = node.hypervisor
    address, mac = addresses.address_of(node), addresses.mac_of(node)
    if hypervisor is None or address is None or mac is None:
        raise PermanentDriverError("invalid_config", f"{node.name} has no host or no address")
    network = node.cluster.network
    with locked(network, hypervisor):
        on_host = list(live_nodes().filter(cluster__network=network, hypervisor=hypervisor))
        if all(n.pk == node.pk for n in on_host):
            _tell_peers(network, hypervisor)  # a new host in the segment
        api_forwards.allocate(node)
        driver.ensure_network(network_spec(network, on_host, hypervisor))
        # Fresh from the database: a rule change since the task loaded the node must not regress.
        firewall = Firewall.objects.select_related("network").get(pk=node.cluster.firewall_id)
        enforced = _apply_firewall(firewall, hypervisor, driver)
    return NicSpec(
        network=network.libvirt_name,
        bridge=network.bridge,
        mac=mac,
        ip=address,
        nwfilter=firewall.nwfilter_name if enforced else None,
    )


def detach(node: Node, driver: HypervisorDriver) -> bool:
    """After the node's domain is gone: drop its lease, or the network (and the nwfilter)
    when no other live node on this hypervisor needs them. Idempotent.

    True when the node's address can hold no lease on the host any more (the network went,
    or the host's DHCP leases show none for its MAC): it needs no quarantine.
    """
    hypervisor = node.hypervisor
    if hypervisor is None:
        return True
    network = node.cluster.network
    mac = addresses.mac_of(node)
    with locked(network, hypervisor):
        others = live_nodes().filter(hypervisor=hypervisor).exclude(pk=node.pk)
        same_network = others.filter(cluster__network=network)
        if same_network.exists():
            driver.ensure_network(network_spec(network, same_network, hypervisor))
            # dnsmasq keeps a dead guest's lease until it expires; only the host can tell.
            lease_gone = driver.capabilities.dhcp_leases and (
                mac not in driver.dhcp_leases(network.libvirt_name)
            )
        else:
            driver.delete_network(network.libvirt_name)  # its leases go with it
            _tell_peers(network, hypervisor)  # this host left the segment
            lease_gone = True
        firewall = node.cluster.firewall
        if not others.filter(cluster__firewall=firewall).exists():
            # A domain still being deleted may hold it: the driver then says "try again".
            driver.delete_nwfilter(firewall.nwfilter_name)
            FirewallRollout.objects.filter(firewall=firewall, hypervisor=hypervisor).delete()
        if lease_gone and mac is not None:
            ipam.lease_gone(network, [mac])  # a quarantine left from an earlier release
    return lease_gone


def _tell_peers(network: Network, hypervisor: Hypervisor) -> None:
    """The segment's hosts changed: each other host updates its flood list (its agent)."""
    for peer in peer_hosts(network, hypervisor).values_list("pk", flat=True):
        enqueue.sync_host_network(peer, network.pk)


def sync(network: Network, hypervisor: Hypervisor) -> None:
    """Bring `network` on `hypervisor` to what its live nodes there need (the segment's
    peers included); nothing when none is left there (detach removed it)."""
    driver = get_driver(hypervisor.uri)
    with locked(network, hypervisor):
        on_host = live_nodes().filter(cluster__network=network, hypervisor=hypervisor)
        if on_host.exists():
            driver.ensure_network(network_spec(network, on_host, hypervisor))


def roll_out(firewall: Firewall) -> None:
    """Re-define the firewall on every host with live nodes behind it (libvirt re-applies
    a redefined nwfilter to running NICs), writing an event per host to the clusters there.

    A host already at this revision is skipped, so a retried rollout does not repeat itself.
    """
    nodes = live_nodes().filter(cluster__firewall=firewall).select_related("hypervisor", "cluster")
    by_host: dict[Hypervisor, set[Cluster]] = {}
    for node in nodes:
        if node.hypervisor is not None:
            by_host.setdefault(node.hypervisor, set()).add(node.cluster)
    done = set(
        FirewallRollout.objects.filter(firewall=firewall, revision=firewall.revision).values_list(
            "hypervisor_id", flat=True
        )
    )
    for hypervisor, clusters in sorted(by_host.items(), key=lambda item: item[0].name):
        if hypervisor.pk in done:
            continue
        driver = get_driver(hypervisor.uri)
        try:
            enforced = _apply_firewall(firewall, hypervisor, driver)
        except PermanentDriverError as err:
            message, state = f"failed on {hypervisor.name}: {err.message}", EventState.FAILED
            # Revision 0: the next rollout tries this host again.
            _record_rollout(
                firewall,
                hypervisor,
                revision=0,
                enforced=False,
                reason=f"failed: {err.message}"[:300],
            )
        else:
            reason = not_enforced_reason(driver)
            message = (
                f"applied on {hypervisor.name}"
                if enforced
                else f"not enforced on {hypervisor.name} ({reason})"
            )
            state = EventState.INFO
        for cluster in sorted(clusters, key=lambda c: c.pk):
            events.record(
                cluster,
                f"firewall {firewall.name} revision {firewall.revision} {message}",
                state=state,
            )
