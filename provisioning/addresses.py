"""A node's address and MAC: a port of its cluster's network, owned by the node's uuid.

The only provisioning module that asks networking for ports; `Node.port` links the two,
so lists `select_related("port")` and stay constant.
"""

from django.db import transaction

from networking import ipam
from provisioning.models import Node


def allocate(node: Node) -> str:
    """The node's address in its cluster's network: the lowest free one. Idempotent."""
    if node.port is not None:
        return node.port.address
    with transaction.atomic():
        port = ipam.allocate(node.cluster.network, str(node.uuid))
        Node.objects.filter(pk=node.pk).update(port=port)
    node.port = port
    return port.address


def release(node: Node, quarantine: bool = True) -> None:
    """Give the node's address back, quarantined while the host's dnsmasq may still lease it
    to the node's MAC (`quarantine=False` when no lease can exist). Idempotent."""
    ipam.release(str(node.uuid), quarantine=quarantine)  # the link goes with it (SET_NULL)
    node.port = None


def address_of(node: Node) -> str | None:
    """Uses `select_related("port")` when the caller did it (lists stay constant)."""
    return node.port.address if node.port is not None else None


def mac_of(node: Node) -> str | None:
    return node.port.mac if node.port is not None else None
