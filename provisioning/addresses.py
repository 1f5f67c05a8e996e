"""A node's address and MAC: a port of its cluster's network, owned by the node's uuid.

The only provisioning module that asks networking for ports; `Node.port` links the two,
so lists `select_related("port")` and stay constant.
"""

from collections.abc import Sequence

from django.db import transaction

from networking import ipam
from provisioning.models import Node


def allocate(node: Node) -> str:
    """The node's address in its cluster's network: the lowest free one. Idempotent."""
    allocate_all([node])
    assert node.port is not None
    return node.port.address


def allocate_all(nodes: Sequence[Node]) -> None:
    """allocate() for nodes of one cluster, in one pass over its network."""
    missing = [node for node in nodes if node.port is None]
    if not missing:
        return
    with transaction.atomic():
        ports = ipam.allocate_many(missing[0].cluster.network, [str(n.uuid) for n in missing])
        for node in missing:
            node.port = ports[str(node.uuid)]
        Node.objects.bulk_update(missing, ["port"])


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
