"""Thin Celery tasks of the launch pipeline: ids in, a service call, bounded retries."""

from datetime import timedelta

from celery import Task, shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from provisioning import pipeline
from provisioning.drivers.base import PermanentDriverError, TransientDriverError
from provisioning.models import Cluster, Node
from provisioning.states import ClusterStatus, NodeStatus, Step, transition

MAX_RETRIES = 5


class StepTask(Task):
    """A pipeline task: acknowledged after it ran, redelivered if its worker dies."""

    acks_late = True
    reject_on_worker_lost = True
    max_retries = MAX_RETRIES
    ignore_result = True


def _backoff(task: Task) -> int:
    return min(60, 2 ** (task.request.retries or 0))


@shared_task(name="provisioning.launch_cluster", base=StepTask)
def launch_cluster(cluster_id: int) -> None:
    cluster = Cluster.objects.filter(pk=cluster_id).first()
    if cluster is None:
        return
    transition(cluster, [ClusterStatus.PENDING], ClusterStatus.PROVISIONING)
    # The server first: agents need it Ready before they can join.
    for node_id in (
        Node.objects.filter(cluster=cluster, status=NodeStatus.PENDING)
        .order_by("-is_server", "id")
        .values_list("id", flat=True)
    ):
        import_image.delay(node_id)


def _driver_step(task: Task, node_id: int, step: Step) -> bool:
    """Run one driver step; True when the node may go on to its next step."""
    node = pipeline.load(node_id)
    if node is None or not pipeline.begin(node):
        return False  # deleted or failed meanwhile: nothing to do
    pipeline.step_started(node, step)
    try:
        pipeline.DRIVER_STEPS[step](node, pipeline.driver_for(node))
    except TransientDriverError as error:
        if task.request.retries < MAX_RETRIES:
            raise task.retry(countdown=_backoff(task)) from error
        with transaction.atomic():
            pipeline.fail_node(node, step, "hypervisor_unreachable", error.message)
        return False
    except PermanentDriverError as error:
        with transaction.atomic():
            pipeline.fail_node(node, step, error.code, error.message)
        return False
    with transaction.atomic():
        pipeline.step_done(node, step)
    node.refresh_from_db(fields=["status"])
    if node.status != NodeStatus.PROVISIONING:
        # Deleted while the driver worked: what it just made must not leak.
        release_node.delay(node.pk)
        return False
    return True


@shared_task(name="provisioning.import_image", bind=True, base=StepTask)
def import_image(self: Task, node_id: int) -> None:
    if _driver_step(self, node_id, Step.IMPORT_IMAGE):
        start_vm.delay(node_id)


@shared_task(name="provisioning.start_vm", bind=True, base=StepTask)
def start_vm(self: Task, node_id: int) -> None:
    if _driver_step(self, node_id, Step.START_VM):
        from provisioning.tasks import guest_sim, inventory

        node = pipeline.load(node_id)
        if node is not None and node.hypervisor_id is not None:
            inventory.sync_hypervisor.delay(node.hypervisor_id)
        if guest_sim.plays(node_id):
            guest_sim.simulate_guest.delay(node_id, 0)


@shared_task(name="provisioning.release_node", bind=True, base=StepTask)
def release_node(self: Task, node_id: int) -> None:
    """Give back a failed node's domain, volume, IP and capacity."""
    node = pipeline.load(node_id)
    if node is None:
        return
    try:
        pipeline.release(node)
    except TransientDriverError as error:
        raise self.retry(countdown=_backoff(self)) from error


@shared_task(name="provisioning.delete_node", bind=True, base=StepTask)
def delete_node(self: Task, node_id: int) -> None:
    node = pipeline.load(node_id)
    if node is None or node.status != NodeStatus.DELETING:
        return
    try:
        pipeline.release(node)
    except TransientDriverError as error:
        raise self.retry(countdown=_backoff(self)) from error
    with transaction.atomic():
        pipeline.finish_delete(node)
    if node.hypervisor_id:
        from provisioning.tasks import inventory

        inventory.sync_hypervisor.delay(node.hypervisor_id)


@shared_task(name="provisioning.reap_stalled", ignore_result=True)
def reap_stalled() -> int:
    """Fail launches that stopped making progress (a lost worker, a silent guest, a launch
    whose task never reached the broker), and re-drive deletions that stalled."""
    cutoff = timezone.now() - timedelta(seconds=settings.STEP_TIMEOUT_SECONDS)
    stalled = Node.objects.filter(
        status__in=[NodeStatus.PENDING, NodeStatus.PROVISIONING], progressed_at__lt=cutoff
    ).values_list("id", flat=True)
    # A deletion whose task was lost (broker down at commit, worker gone): ask again.
    for node_id in Node.objects.filter(
        status=NodeStatus.DELETING, progressed_at__lt=cutoff
    ).values_list("id", flat=True):
        Node.objects.filter(pk=node_id).update(progressed_at=timezone.now())
        delete_node.delay(node_id)
    count = 0
    for node_id in stalled:
        node = pipeline.load(node_id)
        if node is None:
            continue
        with transaction.atomic():
            pipeline.fail_node(
                node,
                node.step,
                "step_timeout",
                f"No progress for {settings.STEP_TIMEOUT_SECONDS} s"
                + (f" during {Step(node.step).label}." if node.step else "."),
            )
        count += 1
    return count
