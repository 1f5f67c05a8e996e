"""Phone-home: a guest's report of one of its steps, applied to the node's pipeline.

Reports follow the step table: a guest step starts only after the step before it is
done, and repeats are accepted and change nothing, so a guest may retry freely.
"""

from django.db import transaction
from django.utils import timezone

from portal.errors import Conflict, Invalid
from provisioning import failures, pipeline, steps
from provisioning.models import Node, NodeStep
from provisioning.states import NodeStatus

STATES = ("started", "done", "failed")


class NotReady(Conflict):
    """The step may not start yet (an agent waits for the server); try again shortly."""

    code = "not_ready"


class IllegalReport(Invalid):
    """A report that does not follow the node's steps."""

    code = "illegal_report"


@transaction.atomic
def report(node: Node, step: str, state: str, message: str = "", code: str = "") -> None:
    """Apply a guest's report. Repeats are accepted and change nothing (idempotent)."""
    if not steps.is_step(step) or steps.get(step).performer != steps.Performer.GUEST:
        raise IllegalReport({"step": f"unknown guest step: {step}"})
    if state not in STATES:
        raise IllegalReport({"state": f"unknown state: {state}"})
    if node.status != NodeStatus.PROVISIONING:
        raise IllegalReport(f"node is {node.status}, not provisioning")
    spec = steps.get(step)
    rows = {row.step: row for row in NodeStep.objects.filter(node=node)}
    before = steps.previous_step(step)
    if before is not None and rows[before.name].finished_at is None:
        raise IllegalReport(f"{step} cannot start before {before.name} is done")
    if state == "failed":
        message = message or f"The guest failed at {step}."
        pipeline.fail_node(node, step, failures.step_failed(step, code), message)
        return
    if state == "started":
        if spec.waits_for_server and not node.is_server and not _server_ready(node):
            raise NotReady("the server node is not Ready yet")
        pipeline.step_started(node, step)
        return
    if rows[step].started_at is None:
        raise IllegalReport(f"{step} cannot be done before it started")
    pipeline.step_done(node, step)
    if steps.next_step(step) is None:
        pipeline.node_ready(node, timezone.now())


def _server_ready(node: Node) -> bool:
    return Node.objects.filter(
        cluster_id=node.cluster_id, is_server=True, status=NodeStatus.RUNNING
    ).exists()
