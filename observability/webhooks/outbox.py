"""Emitting events: a delivery row per subscribed webhook, in the caller's transaction
(so an event exists exactly when the change that caused it was committed), and its send
enqueued on commit. The beat sweep (delivery.due) sends what a lost message left behind."""

import json
import uuid
from collections.abc import Iterable
from typing import Any

from celery import current_app
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from observability.webhooks.models import Delivery, EventType, Webhook
from portal.models import Organisation

DELIVER = "observability.webhooks.deliver"


def enqueue(delivery_id: int, countdown: float = 0.0) -> None:
    """Send delivery `delivery_id` after commit (at once without a transaction). The task
    checks it is due, so a countdown that an eager test runs at once does nothing."""

    def send() -> None:
        current_app.signature(DELIVER, args=(delivery_id,), countdown=countdown).apply_async()

    transaction.on_commit(send, robust=True)


def emit(
    organisation: Organisation,
    event_type: EventType,
    data: dict[str, Any],
    *,
    subject: str = "",
    webhooks: Iterable[Webhook] | None = None,
) -> list[Delivery]:
    """An event for the organisation's active webhooks subscribed to it (or for
    `webhooks`, a ping); `subject` orders the deliveries about one thing."""
    if webhooks is None:
        # JSON containment has no SQLite lookup; an organisation has a handful of webhooks.
        rows = Webhook.objects.filter(organisation=organisation, active=True)
        targets = [pk for pk, events in rows.values_list("pk", "events") if event_type in events]
    else:
        targets = [webhook.pk for webhook in webhooks]
    if not targets:
        return []
    event_id, now = uuid.uuid4(), timezone.now()
    payload = {
        "id": str(event_id),
        "type": str(event_type),
        "created_at": now.isoformat(),
        "organisation": str(organisation.uuid),
        "data": data,
    }
    body = json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"))
    created = []
    with transaction.atomic():
        for webhook_id in targets:
            delivery = Delivery.objects.create(
                webhook_id=webhook_id,
                event_id=event_id,
                event_type=event_type,
                subject=subject,
                body=body,
                next_attempt_at=now,
            )
            enqueue(delivery.pk)
            created.append(delivery)
    return created
