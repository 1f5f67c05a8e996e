"""Writing events: the durable log first, then (on commit) a doorbell for live viewers.

Observability is below provisioning: it takes the cluster as any model row with a uuid
and locks it through its own class, so it imports nothing of provisioning.
"""

import logging
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from channels.layers import get_channel_layer
from django.db import models, transaction
from django.db.models.expressions import Combinable

from observability import layer_sends, log_context
from observability.models import Event, EventState

logger = logging.getLogger(__name__)


class Subject(Protocol):
    """What an event is about: a cluster row (Event.cluster)."""

    @property
    def pk(self) -> Any: ...

    @property
    def uuid(self) -> UUID: ...


def group_name(cluster_uuid: object) -> str:
    return f"cluster.{cluster_uuid}"


def _ring(cluster_uuid: object, event_id: int) -> None:
    layer = get_channel_layer()
    if layer is None:  # embedded mode: consumers poll the event table instead
        return
    message = {"type": "event.ready", "event_id": event_id}
    layer_sends.group_send(layer, group_name(cluster_uuid), message)


@dataclass(frozen=True)
class Entry:
    """One event to append: progress 0-100 (clamped), or an expression the insert
    computes."""

    message: str
    state: str = EventState.INFO
    node: str = ""
    step: str = ""
    progress: int | Combinable = 0


def record(
    cluster: Subject,
    message: str,
    *,
    state: str = EventState.INFO,
    node: str = "",
    step: str = "",
    progress: int | None = None,
) -> Event:
    """Append an event; `progress` None keeps the cluster's last progress figure."""
    # No savepoint of its own (two queries fewer): a failure here fails the caller's whole
    # transaction anyway.
    with transaction.atomic(savepoint=False):
        # One writer per cluster at a time, until commit: a cluster's events then become
        # visible in id order, so a reader that has seen id N never misses a smaller one.
        model: type[models.Model] = type(cluster)  # type: ignore[assignment]
        model._default_manager.select_for_update(no_key=True).filter(pk=cluster.pk).values_list(
            "pk"
        ).get()
        if progress is None:
            last = Event.objects.filter(cluster_id=cluster.pk).order_by("-id").first()
            progress = last.progress if last else 0
        return append(cluster, [Entry(message, state, node, step, progress)])[0]


def append(cluster: Subject, entries: list[Entry]) -> list[Event]:
    """Append `entries` in one insert (which returns each one's progress); the caller's
    transaction holds the cluster's row locked (as record() takes it), which keeps the
    cluster's ids in commit order."""
    written = Event.objects.bulk_create(
        Event(
            cluster_id=cluster.pk,
            message=entry.message[:500],
            state=entry.state,
            node=entry.node,
            step=entry.step,
            progress=(
                max(0, min(100, entry.progress))
                if isinstance(entry.progress, int)
                else entry.progress
            ),
        )
        for entry in entries
    )
    newest = written[-1].id
    transaction.on_commit(lambda: _ring(cluster.uuid, newest), robust=True)
    # The events in the logs too, with the launch's context: one grep of the cluster's
    # uuid shows it from every process.
    for event in written:
        with log_context.bound(cluster=cluster.uuid, node=event.node, step=event.step):
            logger.info(
                event.message, extra={"event_state": event.state, "progress": event.progress}
            )
    return written
