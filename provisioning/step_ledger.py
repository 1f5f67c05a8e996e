"""A node's steps moving on (started, done): the cluster's lock, one read and at most three
writes for any number of moves, so a guest's batch of reports costs what one report does.

The cluster's row is locked first, until commit (its events are written one writer at a
time, observability.events; pipeline.lock_cluster says why first); the read then takes
the node's step rows with the node and its cluster, and the cluster's step counts for the
progress figure. Every writer of the step times comes through here, so under that lock
what was read is what is there: a repeated move is seen as one and changes nothing.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import (
    Case,
    Count,
    DateTimeField,
    F,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.utils import timezone

from observability import events
from observability.models import EventState
from provisioning import steps
from provisioning.models import Cluster, Node, NodeStep
from provisioning.states import NODE_ACTIVE

STARTED, DONE = "started", "done"
# What no mover of steps reads, and the widest columns: the cluster's CA material and join
# token (decrypted on every load) and a failed guest's console lines.
UNREAD = (
    "node__cluster__server_ca_cert",
    "node__cluster__server_ca_key",
    "node__cluster__client_ca_cert",
    "node__cluster__client_ca_key",
    "node__cluster__join_token",
    "node__console_tail",
)


def _cluster_steps(*, done: bool) -> Subquery:
    """How many step rows the cluster's active nodes have (done ones only, with `done`)."""
    rows = NodeStep.objects.filter(
        node__cluster=OuterRef("node__cluster"), node__status__in=NODE_ACTIVE
    )
    if done:
        rows = rows.filter(finished_at__isnull=False)
    return Subquery(rows.order_by().values("node__cluster").annotate(n=Count("id")).values("n"))


@dataclass
class Ledger:
    node: Node
    rows: dict[str, NodeStep]
    total: int
    done: int

    @property
    def progress(self) -> int:
        """Share of the steps done over the cluster's active nodes, 0-100 (as
        pipeline.progress counts it)."""
        return round(100 * self.done / self.total) if self.total else 0


def read(**node: Any) -> Ledger | None:
    """The ledger of the node matching `node` (Node field lookups); None when there is no
    such node. Call it inside the transaction that moves the steps.

    Two queries: the cluster's row locked first, then what is read, in a statement of its
    own, so it is what the writers before it committed (a row read in the statement that
    waited for the lock would be as it was before the wait)."""
    lookup = {f"nodes__{name}": value for name, value in node.items()}
    locked = Cluster.objects.filter(**lookup).select_for_update(no_key=True).values_list("pk")
    if not list(locked):
        return None
    found = list(
        NodeStep.objects.filter(**{f"node__{name}": value for name, value in node.items()})
        .select_related("node__cluster")
        .defer(*UNREAD)
        .annotate(cluster_total=_cluster_steps(done=False), cluster_done=_cluster_steps(done=True))
        .order_by("id")
    )
    if not found:
        return None
    head: Any = found[0]
    return Ledger(
        node=head.node,
        rows={row.step: row for row in found},
        total=head.cluster_total or 0,
        done=head.cluster_done or 0,
    )


def move(ledger: Ledger, moves: Sequence[tuple[str, str]], now: datetime | None = None) -> None:
    """Apply `moves` ((step, started|done), in order) and write their events; a move
    already made is skipped."""
    now = now or timezone.now()
    node = ledger.node
    changed: dict[str, NodeStep] = {}
    entries: list[events.Entry] = []
    current = ""
    for step, state in moves:
        row = ledger.rows[step]
        if state == STARTED and row.started_at is None:
            row.started_at = now
            current = step
            message = "started"
        elif state == DONE and row.finished_at is None:
            row.finished_at = now
            ledger.done += 1
            message = f"done in {(now - (row.started_at or now)).total_seconds():.1f} s"
        else:
            continue
        changed[step] = row
        entries.append(
            events.Entry(
                f"{node.name}: {steps.label(step)} {message}",
                state=EventState.STARTED if state == STARTED else EventState.DONE,
                node=node.name,
                step=step,
                progress=ledger.progress,
            )
        )
    if not changed:
        return
    by_step = {name: Q(step=name) for name in changed}
    NodeStep.objects.filter(node=node, step__in=changed).update(
        started_at=Case(
            *(When(by_step[n], then=Value(r.started_at)) for n, r in changed.items()),
            default=F("started_at"),
            output_field=DateTimeField(),
        ),
        finished_at=Case(
            *(When(by_step[n], then=Value(r.finished_at)) for n, r in changed.items()),
            default=F("finished_at"),
            output_field=DateTimeField(),
        ),
    )
    touched: dict[str, Any] = {"progressed_at": now}
    if current:
        touched["step"] = node.step = current
    Node.objects.filter(pk=node.pk).update(**touched)
    events.append(node.cluster, entries)
