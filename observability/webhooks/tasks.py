"""Webhook tasks: ids only, and idempotent (a delivery not due or already settled is left)."""

from celery import shared_task
from django.utils import timezone

from observability.webhooks import delivery, outbox


@shared_task(name=outbox.DELIVER, ignore_result=True, acks_late=True)
def deliver(delivery_id: int) -> None:
    delivery.attempt(delivery_id)


@shared_task(name="observability.webhooks.sweep", ignore_result=True)
def sweep() -> int:
    """Beat: send every delivery that is due (after a restart, a lost message, a lease
    that ran out); returns how many were sent on."""
    due = delivery.due(timezone.now())
    for delivery_id in due:
        deliver.delay(delivery_id)
    return len(due)
