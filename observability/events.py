"""Writing events: the durable log first, then (on commit) a doorbell for live viewers.

Observability is below provisioning: it takes the cluster as any model row with a uuid
and locks it through its own class, so it imports nothing of provisioning.
"""

import logging
from typing import Any, Protocol
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import models, transaction

from observability import log_context
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
    async_to_sync(layer.group_send)(
        group_name(cluster_uuid), {"type": "event.ready", "event_id": event_id}
    )


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
    with transaction.atomic():
        # One writer per cluster at a time, until commit: a cluster's events then become
        # visible in id order, so a reader that has seen id N never misses a smaller one.
        model: type[models.Model] = type(cluster)  # type: ignore[assignment]
        model._default_manager.select_for_update(no_key=True).filter(pk=cluster.pk).values_list(
            "pk"
        ).get()
        if progress is None:
            last = Event.objects.filter(cluster_id=cluster.pk).order_by("-id").first()
            progress = last.progress if last else 0
        event = Event.objects.create(
            cluster_id=cluster.pk,
            message=message[:500],
            state=state,
            node=node,
            step=step,
            progress=max(0, min(100, progress)),
        )
    transaction.on_commit(lambda: _ring(cluster.uuid, event.id), robust=True)
    # The event in the logs too, with the launch's context: one grep of the cluster's
    # uuid shows it from every process.
    with log_context.bound(cluster=cluster.uuid, node=node, step=step):
        logger.info(message[:500], extra={"event_state": state, "progress": event.progress})
    return event
