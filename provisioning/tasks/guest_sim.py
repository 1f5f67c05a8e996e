"""The guest simulator's task: plays a test-driver VM's guest (provisioning.guest_sim)."""

from celery import Task, shared_task
from django.utils import timezone

from provisioning import enqueue, guest_seed, guest_sim
from provisioning.models import Node
from provisioning.states import NodeStatus

NOT_READY_WAIT = 0.25  # seconds between an agent's tries while the server comes up


@shared_task(name=enqueue.SIMULATE_GUEST, bind=True, max_retries=600, ignore_result=True)
def simulate_guest(self: Task, node_id: int, index: int) -> None:
    """Post the guest's reports from `index` on, a batch at a time; after a batch that
    ends in a step taking time, the rest goes back to the queue with that delay."""
    node = Node.objects.filter(pk=node_id).first()
    while node is not None and index < len(guest_sim.SEQUENCE):
        batch, after, delay = guest_sim.next_batch(index)
        reply = guest_sim.post({"token": guest_seed.node_token(node), "reports": batch})
        if reply.status == 409:  # the server node is not Ready yet: ask again shortly
            raise self.retry(countdown=NOT_READY_WAIT)
        if reply.status >= 300 or batch[-1]["state"] == "failed":
            return  # the portal refused (node deleted or failed): the guest stops
        index = after
        if delay > 0:
            enqueue.simulate_guest(node_id, index, countdown=delay)
            return
    if node is not None and index == len(guest_sim.SEQUENCE):
        # Up: the first heartbeat at once, as the agent's timer sends it (OnActiveSec=0).
        guest_sim.send_heartbeat(node, guest_seed.node_token(node), timezone.now())


@shared_task(name="provisioning.simulate_heartbeats", ignore_result=True)
def simulate_heartbeats() -> int:
    """Beat, every HEARTBEAT_SECONDS: each simulated running guest sends its heartbeat."""
    now = timezone.now()
    nodes = guest_sim.played().filter(status=NodeStatus.RUNNING)
    nodes = nodes.select_related("pool__size", "k3s_version", "cluster__k3s_version")
    for node in nodes:
        guest_sim.send_heartbeat(node, guest_seed.node_token(node), now)
    return len(nodes)
