"""Webhook operations, each taking an Actor: create (the secret comes back once), change,
delete, ping. Every change is audited; the secret and the URL's query never are."""

from collections.abc import Iterable

from django.db import transaction

from observability.webhooks import destinations, outbox, signing
from observability.webhooks.models import SUBSCRIBABLE, Delivery, EventType, Webhook
from portal import audit
from portal.actor import Action, Actor
from portal.errors import Invalid
from portal.models import Organisation


def checked_url(url: str) -> str:
    """The URL, if the portal may send to it now (400 naming `url` otherwise)."""
    url = url.strip()
    try:
        destinations.resolve(destinations.parse(url))
    except (destinations.Refused, destinations.Unresolvable) as error:
        raise Invalid({"url": str(error)}) from None
    return url


def checked_events(events: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(events))
    unknown = [event for event in chosen if event not in SUBSCRIBABLE]
    if unknown:
        known = ", ".join(SUBSCRIBABLE)
        raise Invalid({"events": f"Unknown event {', '.join(unknown)}; choose from {known}."})
    if not chosen:
        raise Invalid({"events": "Choose at least one event."})
    return chosen


def create_webhook(
    actor: Actor,
    organisation: Organisation,
    *,
    url: str,
    events: Iterable[str],
    description: str = "",
    active: bool = True,
) -> Webhook:
    """A new webhook; its `secret` attribute holds the plaintext for this answer only."""
    actor.require(Action.CHANGE, organisation)
    chosen = checked_events(events)
    url = checked_url(url)
    with transaction.atomic():
        webhook = Webhook.objects.create(
            organisation=organisation,
            url=url,
            events=chosen,
            description=description,
            active=active,
            secret=signing.new_secret(),
            created_by=actor.user,
        )
        audit.record(
            "webhook.create",
            webhook,
            actor,
            organisation=organisation,
            host=destinations.host_of(url),
            events=chosen,
        )
    return webhook


def update_webhook(
    actor: Actor,
    webhook: Webhook,
    *,
    url: str | None = None,
    events: Iterable[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
) -> Webhook:
    actor.require(Action.CHANGE, webhook.organisation)
    changes: dict[str, object] = {}
    if url is not None:
        changes["url"] = checked_url(url)
    if events is not None:
        changes["events"] = checked_events(events)
    if description is not None:
        changes["description"] = description
    if active is not None:
        changes["active"] = active
    with transaction.atomic():
        for field, value in changes.items():
            setattr(webhook, field, value)
        webhook.save(update_fields=[*changes, "updated_at"])
        details = {k: v for k, v in changes.items() if k != "url"}
        if "url" in changes:
            details["host"] = destinations.host_of(webhook.url)
        audit.record("webhook.update", webhook, actor, organisation=webhook.organisation, **details)
    return webhook


def delete_webhook(actor: Actor, webhook: Webhook) -> None:
    actor.require(Action.CHANGE, webhook.organisation)
    with transaction.atomic():
        audit.record("webhook.delete", webhook, actor, organisation=webhook.organisation)
        webhook.delete()


def ping(actor: Actor, webhook: Webhook) -> Delivery:
    """A `ping` event to this webhook alone, sent after commit."""
    actor.require(Action.CHANGE, webhook.organisation)
    with transaction.atomic():
        [delivery] = outbox.emit(
            webhook.organisation,
            EventType.PING,
            {"webhook": str(webhook.uuid)},
            webhooks=[webhook],
        )
        audit.record("webhook.ping", webhook, actor, organisation=webhook.organisation)
    return delivery
