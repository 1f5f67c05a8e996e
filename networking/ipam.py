"""Addresses inside a tenant network: CIDR rules, the gateway, one address per node.

An address is held by an `IpAllocation` row; the network's row lock serialises allocations,
and the (network, address) unique constraint backs it, so two nodes never share an address.
"""

import ipaddress

from django.core.exceptions import ValidationError
from django.db import transaction

from networking.models import IpAllocation, Network
from provisioning.models import Node

PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(r) for r in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
MIN_PREFIX, MAX_PREFIX = 16, 28


def parse_cidr(cidr: str) -> ipaddress.IPv4Network:
    """A tenant network's CIDR, or ValidationError({"cidr": why}).

    Host bits must be zero: "10.0.0.5/24" is refused (naming 10.0.0.0/24) rather than
    silently widened, so the caller gets exactly the range they asked for.
    """
    text = str(cidr).strip()
    if "/" not in text:
        raise ValidationError({"cidr": "Give a CIDR with a prefix, e.g. 10.0.0.0/24."})
    try:
        net = ipaddress.IPv4Network(text, strict=False)
    except ValueError as err:
        raise ValidationError({"cidr": f"{text!r} is not an IPv4 CIDR."}) from err
    if not MIN_PREFIX <= net.prefixlen <= MAX_PREFIX:
        raise ValidationError(
            {"cidr": f"The prefix must be between /{MIN_PREFIX} and /{MAX_PREFIX}."}
        )
    if not any(net.subnet_of(r) for r in PRIVATE_RANGES):
        raise ValidationError(
            {"cidr": "Only private ranges are allowed: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16."}
        )
    if str(net) != text:
        raise ValidationError({"cidr": f"Host bits are set; did you mean {net}?"})
    return net


def gateway_of(net: ipaddress.IPv4Network) -> str:
    """The first host address; the hypervisor's bridge answers there."""
    return str(net.network_address + 1)


def _host_range(network: Network) -> range:
    """Integer addresses a node may hold: not the network, gateway or broadcast address."""
    net = ipaddress.IPv4Network(network.cidr)
    return range(int(net.network_address) + 2, int(net.broadcast_address))


def allocate(node: Node) -> str:
    """The node's address in its cluster's network: the lowest free one. Idempotent."""
    current = address_of(node)
    if current is not None:
        return current
    network = node.cluster.network
    with transaction.atomic():
        # The lock makes concurrent allocations in one network take turns; each then sees
        # the addresses the ones before it committed.
        Network.objects.select_for_update().get(pk=network.pk)
        taken = {
            int(ipaddress.IPv4Address(a))
            for a in IpAllocation.objects.filter(network=network).values_list("address", flat=True)
        }
        free = next((a for a in _host_range(network) if a not in taken), None)
        if free is None:
            raise ValidationError({"network": f"no free address in {network.cidr}"})
        allocation = IpAllocation.objects.create(
            network=network, node=node, address=str(ipaddress.IPv4Address(free))
        )
    Node.ip_allocation.related.set_cached_value(node, allocation)
    return allocation.address


def release(node: Node) -> None:
    """Give the node's address back. Idempotent."""
    IpAllocation.objects.filter(node=node).delete()
    Node.ip_allocation.related.set_cached_value(node, None)  # so address_of says None


def address_of(node: Node) -> str | None:
    """Uses `select_related("ip_allocation")` when the caller did it (lists stay constant)."""
    try:
        return node.ip_allocation.address
    except IpAllocation.DoesNotExist:
        return None


def mac_for(node: Node) -> str:
    """Deterministic, so a redefined domain keeps its MAC and its DHCP entry.

    52:54:00 is the locally administered prefix libvirt/QEMU use; the last three bytes of a
    UUID4 are all random bits.
    """
    tail = node.uuid.bytes[-3:]
    return "52:54:00:" + ":".join(f"{b:02x}" for b in tail)
