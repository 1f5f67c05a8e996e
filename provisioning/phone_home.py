"""Phone-home: a guest's reports of its steps, applied to the node's pipeline.

Reports follow the step table: a guest step starts only after the step before it is
done, and repeats are accepted and change nothing, so a guest may retry freely. A guest
may send several reports at once (the end of a step and the start of the next): they
apply in order, in one transaction, at the cost of one; the first one refused stops the
rest and is the answer, and those before it stay applied, so the guest simply sends the
same batch again.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from observability import tracing
from portal.errors import Conflict, DomainError, Invalid
from provisioning import failures, guest_seed, pipeline, step_ledger, steps
from provisioning.models import Node
from provisioning.states import NodeStatus

STATES = ("started", "done", "failed")


class NotReady(Conflict):
    """The step may not start yet (an agent waits for the server); try again shortly."""

    code = "not_ready"


class IllegalReport(Invalid):
    """A report that does not follow the node's steps."""

    code = "illegal_report"


class UnknownNode(LookupError):
    """No node has the token, or whoever asks may not act as it."""


@dataclass(frozen=True)
class Report:
    step: str
    state: str
    message: str = ""
    code: str = ""


def report(token: str, reports: Sequence[Report], allowed: Callable[[Node], bool]) -> Node:
    """Apply a guest's reports (`allowed` says whether the asker may act as the token's
    node); raises the first refusal after keeping what came before it."""
    with transaction.atomic():
        ledger = step_ledger.read(token_digest=guest_seed.token_digest(token)) if token else None
        if ledger is None or not allowed(ledger.node):
            raise UnknownNode(token)
        shown = ",".join(f"{each.step}:{each.state}" for each in reports)
        with tracing.continued(ledger.node.cluster.trace_parent, "guest.report", reports=shown):
            refusal = _apply(ledger, reports)
    if refusal is not None:
        raise refusal
    return ledger.node


def _apply(ledger: step_ledger.Ledger, reports: Sequence[Report]) -> DomainError | None:
    """Check the reports in order against the steps as the earlier ones leave them, then
    write the moves of those that passed; the refusal that stopped the batch, if any."""
    node = ledger.node
    moves: list[tuple[str, str]] = []
    refusal: DomainError | None = None
    failed: Report | None = None
    for each in reports:
        try:
            _check(ledger, each, moves)
        except DomainError as error:
            refusal = error
            break
        if each.state == "failed":
            failed = each
            break
        moves.append((each.step, each.state))
    step_ledger.move(ledger, moves)
    if failed is not None:
        code = failures.step_failed(failed.step, failed.code)
        message = failed.message or f"The guest failed at {failed.step}."
        pipeline.fail_node(node, failed.step, code, message)
    elif moves and moves[-1] == (steps.TABLE[-1].name, "done"):
        pipeline.node_ready(node, timezone.now())
    return refusal


def _check(ledger: step_ledger.Ledger, each: Report, moves: list[tuple[str, str]]) -> None:
    """Refuse a report that does not follow the steps, counting the batch's earlier
    `moves` as made."""
    step, state, node = each.step, each.state, ledger.node
    if not steps.is_step(step) or steps.get(step).performer != steps.Performer.GUEST:
        raise IllegalReport({"step": f"unknown guest step: {step}"})
    if state not in STATES:
        raise IllegalReport({"state": f"unknown state: {state}"})
    if node.status != NodeStatus.PROVISIONING:
        raise IllegalReport(f"node is {node.status}, not provisioning")
    before = steps.previous_step(step)
    if before is not None and not _made(ledger, moves, before.name, "done"):
        raise IllegalReport(f"{step} cannot start before {before.name} is done")
    if state == "started":
        spec = steps.get(step)
        if spec.waits_for_server and not node.is_server and not _server_ready(node):
            raise NotReady("the server node is not Ready yet")
    elif state == "done" and not _made(ledger, moves, step, "started"):
        raise IllegalReport(f"{step} cannot be done before it started")


def _made(ledger: step_ledger.Ledger, moves: list[tuple[str, str]], step: str, state: str) -> bool:
    row = ledger.rows[step]
    stamp = row.finished_at if state == "done" else row.started_at
    return stamp is not None or (step, state) in moves


def _server_ready(node: Node) -> bool:
    return Node.objects.filter(
        cluster_id=node.cluster_id, is_server=True, status=NodeStatus.RUNNING
    ).exists()
