"""Thin Celery tasks of the launch pipeline: ids in, a service call, bounded retries.

One task (`provisioning.run_step`) runs a node's worker steps of the table one after
another (`steps.next_step`), a retry going on from the step that failed; it replaced the
per-step tasks `provisioning.import_image` and `provisioning.start_vm`.
"""

from datetime import timedelta

from celery import Task, shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from provisioning import enqueue, failures, guest_seed, guest_sim, pipeline, step_ledger, steps
from provisioning.drivers.base import DriverError, PermanentDriverError, TransientDriverError
from provisioning.models import Cluster, Node
from provisioning.states import NODE_LAUNCHING, ClusterStatus, NodeStatus, transition

MAX_RETRIES = 5
REPORT_SILENT_GUEST = "provisioning.report_silent_guest"
# The first step a guest reports (cloud_init), and the worker step before it (start_vm).
FIRST_GUEST_STEP = steps.performed_by(steps.Performer.GUEST)[0].name
VM_STARTED_STEP = steps.NAMES[steps.NAMES.index(FIRST_GUEST_STEP) - 1]


class StepTask(Task):
    """A pipeline task: acknowledged after it ran, redelivered if its worker dies."""

    acks_late = True
    reject_on_worker_lost = True
    max_retries = MAX_RETRIES
    ignore_result = True


def _backoff(task: Task) -> int:
    return min(60, 2 ** (task.request.retries or 0))


@shared_task(name=enqueue.LAUNCH_CLUSTER, base=StepTask)
def launch_cluster(cluster_id: int) -> None:
    cluster = Cluster.objects.filter(pk=cluster_id).first()
    if cluster is None:
        return
    transition(cluster, [ClusterStatus.PENDING], ClusterStatus.PROVISIONING)
    # The server first: agents need it Ready before they can join.
    enqueue.launch_nodes(
        Node.objects.filter(cluster=cluster, status=NodeStatus.PENDING)
        .order_by("-is_server", "id")
        .values_list("id", flat=True)
    )


@shared_task(name=enqueue.RUN_STEP, bind=True, base=StepTask)
def run_step(self: Task, node_id: int, step: str) -> None:
    """Run worker step `step` of a node and the worker steps after it, one task for them
    all, then hand the node to its guest (or, after the last step, make it ready). A
    step's end and the next one's start are written together (pipeline.advance)."""
    node = pipeline.load(node_id)
    if node is None or not pipeline.begin(node):
        return  # deleted or failed meanwhile: nothing to do
    moves = [(step, step_ledger.STARTED)]
    while pipeline.advance(node, moves):
        if not _drive(self, node, step):
            return
        following = steps.next_step(step)
        moves = [(step, step_ledger.DONE)]
        if following is None or following.performer != steps.Performer.WORKER:
            if not pipeline.advance(node, moves):
                break
            if following is None:
                _ready(node)
            else:
                _hand_to_guest(node)
            return
        step = following.name
        moves.append((step, step_ledger.STARTED))
    if moves[0][1] == step_ledger.DONE:
        # Deleted while the driver worked: what it just made must not leak.
        enqueue.release_node(node.pk)


def _drive(task: Task, node: Node, step: str) -> bool:
    """A worker step's driver work; False when it failed the node."""
    try:
        pipeline.run_worker_step(node, step)
    except TransientDriverError as error:
        if task.request.retries < MAX_RETRIES:
            # From this step: those before it are done.
            raise task.retry(args=(node.pk, step), countdown=_backoff(task)) from error
        with transaction.atomic():
            pipeline.fail_node(node, step, failures.HYPERVISOR_UNREACHABLE, error.message)
        return False
    except PermanentDriverError as error:
        with transaction.atomic():
            pipeline.fail_node(node, step, error.code, error.message)
        return False
    return True


def _hand_to_guest(node: Node) -> None:
    """The worker steps are done and the VM runs: its guest reports the rest."""
    if node.hypervisor is not None:
        enqueue.sync_hypervisor_soon(node.hypervisor.pk)  # a domain more on the host
        if guest_sim.simulated(node.hypervisor):
            enqueue.simulate_guest(node.pk)


def _ready(node: Node) -> None:
    with transaction.atomic():
        pipeline.node_ready(node, timezone.now())


@shared_task(name=enqueue.RELEASE_NODE, bind=True, base=StepTask)
def release_node(self: Task, node_id: int) -> None:
    """Give back a failed node's domain, volume, IP and capacity."""
    node = pipeline.load(node_id)
    if node is None:
        return
    try:
        pipeline.release(node)
    except TransientDriverError as error:
        raise self.retry(countdown=_backoff(self)) from error


@shared_task(name=enqueue.DELETE_NODE, bind=True, base=StepTask)
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
        enqueue.sync_hypervisor_soon(node.hypervisor_id)


@shared_task(name="provisioning.reap_stalled", ignore_result=True)
def reap_stalled() -> int:
    """Fail launches that stopped making progress (a lost worker, a silent guest, a launch
    whose task never reached the broker), and re-drive deletions that stalled."""
    cutoff = timezone.now() - timedelta(seconds=settings.STEP_TIMEOUT_SECONDS)
    stalled = (
        Node.objects.with_last_move()
        .with_step()
        .filter(Q(moved_at__lt=cutoff), status__in=NODE_LAUNCHING)
        .only("id")
    )
    # A deletion whose task was lost (broker down at commit, worker gone): ask again.
    for node_id in Node.objects.filter(
        status=NodeStatus.DELETING, progressed_at__lt=cutoff
    ).values_list("id", flat=True):
        Node.objects.filter(pk=node_id).update(progressed_at=timezone.now())
        enqueue.delete_nodes([node_id])
    # Earlier and more precise than step_timeout: a VM started whose guest never phoned home.
    for node_id in silent_guests().values_list("id", flat=True):
        enqueue.on_commit(REPORT_SILENT_GUEST, node_id)
    count = 0
    for found in stalled:
        node, step = pipeline.load(found.pk), found.step
        if node is None:
            continue
        with transaction.atomic():
            pipeline.fail_node(
                node,
                step,
                failures.STEP_TIMEOUT,
                f"No progress for {settings.STEP_TIMEOUT_SECONDS} s"
                + (f" during {steps.label(step)}." if step else "."),
            )
        count += 1
    return count


def silent_guests() -> QuerySet[Node]:
    """Launching nodes whose VM started GUEST_BOOT_DEADLINE_SECONDS ago or more, and whose
    guest has not yet reported the start of its first step (cloud_init)."""
    cutoff = timezone.now() - timedelta(seconds=settings.GUEST_BOOT_DEADLINE_SECONDS)
    return (
        Node.objects.filter(status=NodeStatus.PROVISIONING)
        .filter(steps__step=VM_STARTED_STEP, steps__finished_at__lte=cutoff)
        .filter(steps__step=FIRST_GUEST_STEP, steps__started_at__isnull=True)
    )


@shared_task(name=REPORT_SILENT_GUEST, base=StepTask)
def report_silent_guest(node_id: int) -> None:
    """On the host's worker: fail a silent guest at its first step with `guest_unreachable`,
    keeping its serial console's last lines on the node (libvirt calls stay on workers)."""
    node = pipeline.load(node_id)
    if node is None or not silent_guests().filter(pk=node_id).exists():
        return  # it phoned home, failed or went meanwhile
    try:
        tail = guest_seed.redacted(
            pipeline.driver_for(node).console_tail(node.domain_name, settings.CONSOLE_TAIL_LINES),
            node,
        )
    except DriverError as error:
        tail = f"no console log: {error.message}"
    first = FIRST_GUEST_STEP
    with transaction.atomic():
        pipeline.lock_cluster(node.cluster_id)
        Node.objects.filter(pk=node_id, status__in=NODE_LAUNCHING).update(console_tail=tail)
        pipeline.fail_node(
            node,
            first,
            failures.GUEST_UNREACHABLE,
            f"The guest did not phone home within {settings.GUEST_BOOT_DEADLINE_SECONDS} s"
            " of its VM starting; its console's last lines are kept on the node.",
        )
