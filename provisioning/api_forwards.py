"""A server node's Kubernetes API as customers reach it: a port of its host's public address
forwarded to the node's 6443 (DNAT on the host, then in the network's namespace), so
`kubectl` works from outside although the node's address is the tenant's own (and may be
another tenant's too). Hosts without a public address forward nothing; kubeconfigs then
name the tenant address.

Ports are unique per host (a partial unique constraint): a race between two networks on
one host ends with one of them taking the next port.
"""

from django.conf import settings
from django.db import IntegrityError, transaction

from provisioning import addresses
from provisioning.models import Node

API_PORT = 6443


def allocate(node: Node) -> int | None:
    """The node's forwarded port, taking the lowest free one on its host. Idempotent."""
    hypervisor = node.hypervisor
    if not node.is_server or hypervisor is None or not hypervisor.public_address:
        return None
    if node.api_port is not None:
        return node.api_port
    taken = set(
        Node.objects.filter(hypervisor=hypervisor, api_port__isnull=False).values_list(
            "api_port", flat=True
        )
    )
    for port in range(settings.API_FORWARD_PORT_MIN, settings.API_FORWARD_PORT_MAX + 1):
        if port in taken:
            continue
        try:
            with transaction.atomic():
                Node.objects.filter(pk=node.pk, api_port__isnull=True).update(api_port=port)
        except IntegrityError:
            continue  # taken meanwhile by a node of another network
        node.api_port = Node.objects.values_list("api_port", flat=True).get(pk=node.pk)
        return node.api_port
    return None  # every port of the range is forwarded: the tenant address still works


def release(node: Node) -> None:
    Node.objects.filter(pk=node.pk).update(api_port=None)
    node.api_port = None


def endpoint(server: Node) -> str | None:
    """https://host:port of the cluster's API as seen from outside, else from inside."""
    hypervisor = server.hypervisor
    if server.api_port is not None and hypervisor is not None and hypervisor.public_address:
        return f"https://{hypervisor.public_address}:{server.api_port}"
    address = addresses.address_of(server)
    return f"https://{address}:{API_PORT}" if address else None
