from celery import Task, shared_task
from django.conf import settings

from provisioning import guest, guest_sim
from provisioning.models import Node

NOT_READY_WAIT = 0.25  # seconds between an agent's tries while the server comes up


def plays(node_id: int) -> bool:
    """Only test-driver domains get a simulated guest; real VMs run the real agent."""
    uri = Node.objects.filter(pk=node_id).values_list("hypervisor__uri", flat=True).first()
    return bool(settings.GUEST_SIMULATOR and uri and uri.startswith("test:"))


@shared_task(name="provisioning.simulate_guest", bind=True, max_retries=600, ignore_result=True)
def simulate_guest(self: Task, node_id: int, index: int) -> None:
    """Post the guest's reports from `index` on; a report that must wait for the guest's
    work to take time goes back to the queue with that delay, the others follow at once."""
    node = Node.objects.filter(pk=node_id).first()
    while node is not None and index < len(guest_sim.SEQUENCE):
        payload, delay = guest_sim.next_report(index)
        reply = guest_sim.post({"token": guest.node_token(node), **payload})
        if reply.status == 409:  # the server node is not Ready yet: ask again shortly
            raise self.retry(countdown=NOT_READY_WAIT)
        if reply.status >= 300 or payload["state"] == "failed":
            return  # the portal refused (node deleted or failed): the guest stops
        index += 1
        if delay > 0:
            simulate_guest.apply_async((node_id, index), countdown=delay)
            return
