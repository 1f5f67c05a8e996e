"""Celery tasks of tenant networks on hypervisors: thin, ids only, idempotent.

The task keeps its `networking.` name: networking enqueues it by that name, since it
cannot import provisioning.
"""

from celery import shared_task

from networking.models import Firewall, Network
from networking.services import NETWORK_SYNC_TASK, ROLLOUT_TASK
from provisioning import enqueue, host_network
from provisioning.drivers.base import TransientDriverError
from provisioning.models import Hypervisor


@shared_task(
    name=ROLLOUT_TASK,
    acks_late=True,
    autoretry_for=(TransientDriverError,),
    retry_backoff=True,
    max_retries=5,
)
def rollout_firewall(firewall_id: int) -> None:
    firewall = Firewall.objects.select_related("network").filter(pk=firewall_id).first()
    if firewall is not None:  # deleted meanwhile: nothing left to roll out
        host_network.roll_out(firewall)


@shared_task(
    name=enqueue.SYNC_HOST_NETWORK,
    acks_late=True,
    autoretry_for=(TransientDriverError,),
    retry_backoff=True,
    max_retries=5,
)
def sync_host_network(hypervisor_id: int, network_id: int) -> None:
    """Run by the host's agent: the network's segment there follows its peers."""
    hypervisor = Hypervisor.objects.filter(pk=hypervisor_id).first()
    network = Network.objects.filter(pk=network_id).first()
    if hypervisor is not None and network is not None:
        host_network.sync(network, hypervisor)


@shared_task(name=NETWORK_SYNC_TASK, acks_late=True)
def sync_network(network_id: int) -> None:
    """The network changed: each host with its live nodes re-applies it (its agent)."""
    on_network = host_network.live_nodes().filter(cluster__network_id=network_id)
    hosts = Hypervisor.objects.filter(nodes__in=on_network).distinct()
    for hypervisor_id in hosts.values_list("pk", flat=True):
        enqueue.sync_host_network(hypervisor_id, network_id)
