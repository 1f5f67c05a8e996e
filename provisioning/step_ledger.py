"""A node's steps moving on (started, done): one locking read and at most two writes for
any number of moves, so a guest's batch of reports costs what one report does.

The read locks the node's cluster first (its events are written one writer at a time,
observability.events; pipeline.lock_cluster says why first), then the node and its step
rows: PostgreSQL hands a statement that waited for a lock the newest version of each row
it locked, so what is read is what the writers before it committed. Every writer of the
step times comes through here, so under that lock a repeated move is seen as one and
changes nothing. The node's current step and last move are read from these rows
(NodeQuerySet), and the cluster's progress is counted by the event insert itself, in a
statement that starts after the lock, as counts in the waiting read could be stale.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import (
    Case,
    DateTimeField,
    F,
    IntegerField,
    Q,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.utils import timezone

from observability import events
from observability.models import EventState
from provisioning import steps
from provisioning.models import Cluster, Node, NodeStep
from provisioning.states import NODE_ACTIVE

STARTED, DONE = "started", "done"
# What no mover of steps reads, and the widest columns: the cluster's CA material and join
# token (decrypted on every load) and a failed guest's console lines.
UNREAD = (*Cluster.pki_fields_from("node__cluster"), "node__console_tail")


def _progress_sql() -> str:
    """SQL for the cluster's progress, rounded half up, when some of its done steps were
    not yet: params undone, cluster id, then NODE_ACTIVE's statuses. Written out because
    the ORM compiles a subquery again for each event of a batch, and that cost about a
    third of a report's Python each time (cProfile's call counts)."""
    step, node = NodeStep._meta, Node._meta
    statuses = ", ".join(["%s"] * len(NODE_ACTIVE))
    finished = step.get_field("finished_at").column
    # Names from the models' meta; every value is a parameter.
    done = f"SUM(CASE WHEN s.{finished} IS NULL THEN 0 ELSE 1 END)"
    return (
        f"COALESCE((SELECT (200 * ({done} - %s) + COUNT(*))"  # noqa: S608
        " / NULLIF(2 * COUNT(*), 0)"
        f" FROM {step.db_table} s JOIN {node.db_table} n ON n.id = s.node_id"
        f" WHERE n.cluster_id = %s AND n.status IN ({statuses})), 0)"
    )


PROGRESS_SQL = _progress_sql()


def progress_after(cluster_id: int, undone: int) -> RawSQL:
    """The cluster's progress (0-100, as pipeline.progress) over its active nodes' steps
    when `undone` of the done ones were not yet, counted by the statement it is in."""
    return RawSQL(PROGRESS_SQL, (undone, cluster_id, *NODE_ACTIVE), IntegerField())  # noqa: S611


@dataclass
class Ledger:
    node: Node
    rows: dict[str, NodeStep]


def read(**node: Any) -> Ledger | None:
    """The ledger of the node matching `node` (Node field lookups); None when there is no
    such node. Call it inside the transaction that moves the steps: it holds the locks."""
    found = list(
        NodeStep.objects.filter(**{f"node__{name}": value for name, value in node.items()})
        .select_related("node__cluster")
        .defer(*UNREAD)
        # In this order: the cluster's row first, as every writer of its events takes it.
        .select_for_update(no_key=True, of=("node__cluster", "node", "self"))
        .order_by("id")
    )
    if not found:
        return None
    return Ledger(node=found[0].node, rows={row.step: row for row in found})


def move(ledger: Ledger, moves: Sequence[tuple[str, str]], now: datetime | None = None) -> None:
    """Apply `moves` ((step, started|done), in order) and write their events; a move
    already made is skipped."""
    now = now or timezone.now()
    node = ledger.node
    changed: dict[str, NodeStep] = {}
    made: list[tuple[str, str, str]] = []  # (step, state, message)
    for step, state in moves:
        row = ledger.rows[step]
        if state == STARTED and row.started_at is None:
            row.started_at = now
            message = "started"
        elif state == DONE and row.finished_at is None:
            row.finished_at = now
            message = f"done in {(now - (row.started_at or now)).total_seconds():.1f} s"
        else:
            continue
        changed[step] = row
        made.append((step, state, message))
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
    # Each event's progress counts the steps done up to it: the insert sees every done
    # step, less those the batch made after it.
    states = [state for _, state, _ in made]
    events.append(
        node.cluster,
        [
            events.Entry(
                f"{node.name}: {steps.label(step)} {message}",
                state=EventState.STARTED if state == STARTED else EventState.DONE,
                node=node.name,
                step=step,
                progress=progress_after(node.cluster_id, states[k + 1 :].count(DONE)),
            )
            for k, (step, state, message) in enumerate(made)
        ],
    )
