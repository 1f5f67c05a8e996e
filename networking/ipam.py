"""Addresses inside a tenant network: CIDR rules, the gateway, and ports.

A port (address + MAC) is held by an owner that networking knows only by an opaque id, so
this app never needs to know what a node is. The network's row lock serialises
allocations, and the unique constraints back it, so two owners never share an address or
a MAC.

An address given back is quarantined (QuarantinedAddress) until the DHCP lease its old MAC
may still hold on the host has run out (ADDRESS_QUARANTINE_SECONDS, as long as the lease
the network gives: DHCP_LEASE_SECONDS), or a worker saw the lease gone: dnsmasq offers
nothing to a new MAC for an address another MAC still leases.
"""

import hashlib
import ipaddress
import itertools
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from networking.models import Network, Port, QuarantinedAddress
from portal.errors import Invalid

PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(r) for r in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
MIN_PREFIX, MAX_PREFIX = 16, 28
MAC_PREFIX = "52:54:00:"  # the locally administered prefix libvirt/QEMU use


def parse_cidr(cidr: str) -> ipaddress.IPv4Network:
    """A tenant network's CIDR, or Invalid({"cidr": why}).

    Host bits must be zero: "10.0.0.5/24" is refused (naming 10.0.0.0/24) rather than
    silently widened, so the caller gets exactly the range they asked for.
    """
    text = str(cidr).strip()
    if "/" not in text:
        raise Invalid({"cidr": "Give a CIDR with a prefix, e.g. 10.0.0.0/24."})
    try:
        net = ipaddress.IPv4Network(text, strict=False)
    except ValueError as err:
        raise Invalid({"cidr": f"{text!r} is not an IPv4 CIDR."}) from err
    if not MIN_PREFIX <= net.prefixlen <= MAX_PREFIX:
        raise Invalid({"cidr": f"The prefix must be between /{MIN_PREFIX} and /{MAX_PREFIX}."})
    if not any(net.subnet_of(r) for r in PRIVATE_RANGES):
        raise Invalid(
            {"cidr": "Only private ranges are allowed: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16."}
        )
    if str(net) != text:
        raise Invalid({"cidr": f"Host bits are set; did you mean {net}?"})
    return net


def gateway_of(net: ipaddress.IPv4Network) -> str:
    """The first host address; the hypervisor's bridge answers there."""
    return str(net.network_address + 1)


def _host_range(network: Network) -> range:
    """Integer addresses a port may hold: not the network, gateway or broadcast address."""
    net = ipaddress.IPv4Network(network.cidr)
    return range(int(net.network_address) + 2, int(net.broadcast_address))


def macs_for(owner: str) -> Iterator[str]:
    """The owner's MACs in order of preference, the same every time, so a redefined domain
    keeps its MAC and its DHCP entry.

    The first is the last three bytes of a UUID owner (all random bits in a UUID4), the
    rest are hashes; the next one is taken only when the network already uses the first.
    """
    try:
        first = uuid.UUID(owner).bytes[-3:]
    except ValueError:
        first = hashlib.sha256(owner.encode()).digest()[:3]
    tails = itertools.chain(
        [first], (hashlib.sha256(f"{owner}/{n}".encode()).digest()[:3] for n in itertools.count(1))
    )
    for tail in tails:
        yield MAC_PREFIX + ":".join(f"{b:02x}" for b in tail)


def allocate(network: Network, owner: str) -> Port:
    """The owner's port in the network: the lowest address neither held nor quarantined, its
    first free MAC. Idempotent: an owner holds one port per network."""
    return allocate_many(network, [owner])[owner]


def allocate_many(network: Network, owners: Sequence[str]) -> dict[str, Port]:
    """Each owner's port in the network (as allocate() gives one), in owners' order: the
    lowest free addresses, in one pass over what the network holds."""
    with transaction.atomic():
        # The lock makes concurrent allocations in one network take turns; each then sees
        # the ports the ones before it committed.
        Network.objects.select_for_update().get(pk=network.pk)
        ports = {p.owner: p for p in Port.objects.filter(network=network, owner__in=owners)}
        wanted = [owner for owner in dict.fromkeys(owners) if owner not in ports]
        if not wanted:
            return ports
        cutoff = timezone.now() - timedelta(seconds=settings.ADDRESS_QUARANTINE_SECONDS)
        QuarantinedAddress.objects.filter(network=network, released_at__lte=cutoff).delete()
        held = list(Port.objects.filter(network=network).values_list("address", "mac"))
        held += QuarantinedAddress.objects.filter(network=network).values_list("address", "mac")
        addresses = {int(ipaddress.IPv4Address(a)) for a, _ in held}
        macs = {m for _, m in held}
        free = (a for a in _host_range(network) if a not in addresses)
        made = []
        for owner in wanted:
            address = next(free, None)
            if address is None:
                raise Invalid({"network": f"no free address in {network.cidr}"})
            mac = next(m for m in macs_for(owner) if m not in macs)
            macs.add(mac)
            made.append(
                Port(
                    network=network,
                    owner=owner,
                    address=str(ipaddress.IPv4Address(address)),
                    mac=mac,
                )
            )
        ports.update((port.owner, port) for port in Port.objects.bulk_create(made))
    return ports


def release(owner: str, quarantine: bool = True) -> None:
    """Give back every port the owner holds, quarantined unless no lease can be out there
    (`quarantine=False`: the address never reached a host). Idempotent."""
    with transaction.atomic():
        ports = list(Port.objects.filter(owner=owner))
        if quarantine:
            now = timezone.now()
            for port in ports:
                QuarantinedAddress.objects.update_or_create(
                    network_id=port.network_id,
                    address=port.address,
                    defaults={"mac": port.mac, "released_at": now},
                )
        Port.objects.filter(pk__in=[p.pk for p in ports]).delete()


def lease_gone(network: Network, macs: Iterable[str]) -> int:
    """A worker saw these MACs hold no lease in the network any more: their addresses are
    free at once. Returns how many quarantines ended."""
    deleted, _ = QuarantinedAddress.objects.filter(network=network, mac__in=list(macs)).delete()
    return deleted
