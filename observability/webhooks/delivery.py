"""Sending deliveries: claim, POST, record, and schedule the retry or the next in line.

A delivery is claimed under a row lock (`select_for_update(skip_locked=True)`: a second
worker skips it) by pushing its `next_attempt_at` a lease ahead, and that commits before
the request goes out, so no transaction stays open over the network (SQLite would hold
its one write lock meanwhile). A worker lost mid-send leaves the lease to run out, and the
beat sweep sends it again. For one webhook the deliveries about one subject (a cluster)
go in order: a delivery waits while an earlier one of the same subject is open, and the
settling of one sends the next.
"""

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from observability.webhooks import destinations, outbox, signing
from observability.webhooks.models import OPEN, Attempt, Delivery, DeliveryStatus

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
LEASE = timedelta(seconds=60)  # longer than a request can take
WINDOW = timedelta(hours=24)  # retries stop this long after the first attempt
FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS = 30, 3600
BODY_LIMIT = 4096  # bytes of a response read and kept
SLACK = timedelta(seconds=1)  # a countdown may arrive a little before its time
S = DeliveryStatus


@dataclass(frozen=True)
class Outcome:
    duration_ms: int
    status_code: int | None = None
    body: str = ""
    error: str = ""
    permanent: bool = False  # no retry: the URL is refused

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff(attempts: int) -> float:
    """Seconds before retry number `attempts`: 30 s, 1 min, 2, 4, ... up to an hour, plus
    up to a fifth more at random, so receivers that failed together are not hit together."""
    base = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(0, attempts - 1))
    return base + secrets.randbelow(base // 5 + 1)


def _earlier_open() -> Exists:
    """An open delivery before the outer one, to the same webhook about the same subject."""
    return Exists(
        Delivery.objects.filter(
            webhook_id=OuterRef("webhook_id"),
            subject=OuterRef("subject"),
            status__in=OPEN,
            id__lt=OuterRef("id"),
        ).exclude(subject="")
    )


def due(now: datetime, limit: int = 500) -> list[int]:
    """Open deliveries whose time has come and that nothing earlier holds up."""
    rows = Delivery.objects.filter(status__in=OPEN, next_attempt_at__lte=now)
    rows = rows.exclude(_earlier_open()).order_by("next_attempt_at", "id")
    return list(rows.values_list("pk", flat=True)[:limit])


def _claim(delivery_id: int, now: datetime) -> Delivery | None:
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(pk=delivery_id, status__in=OPEN, next_attempt_at__lte=now + SLACK)
            .annotate(held_up=_earlier_open())
            .first()
        )
        if delivery is None or delivery.held_up:
            return None  # settled, not due, being sent, or waiting for an earlier one
        delivery.next_attempt_at = now + LEASE
        delivery.first_attempt_at = delivery.first_attempt_at or now
        delivery.save(update_fields=["next_attempt_at", "first_attempt_at"])
    return Delivery.objects.select_related("webhook").get(pk=delivery_id)


def attempt(delivery_id: int, now: datetime | None = None) -> str | None:
    """Try delivery `delivery_id` if it is due and first in line; its status after, or
    None when it was not tried."""
    now = now or timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return None
    return _record(delivery, post(delivery, now), now)


def post(delivery: Delivery, now: datetime) -> Outcome:
    started = time.perf_counter()

    def took() -> int:
        return round((time.perf_counter() - started) * 1000)

    try:
        target = destinations.parse(delivery.webhook.url)
        address = destinations.resolve(target)[0]
    except destinations.Refused as error:
        return Outcome(took(), error=f"Refused: {error}", permanent=True)
    except destinations.Unresolvable as error:
        return Outcome(took(), error=str(error))
    body = delivery.body.encode()
    headers = {
        "Host": target.netloc,
        "Content-Type": "application/json",
        "User-Agent": "k3s-portal-webhooks",
        "Accept-Encoding": "identity",  # the body is read raw, never inflated
        "X-Portal-Delivery": str(delivery.uuid),
        "X-Portal-Event": delivery.event_type,
        signing.SIGNATURE_HEADER: signing.signature(
            delivery.webhook.secret, body, int(now.timestamp())
        ),
    }
    # TLS names the host and checks its certificate by name, over the pinned address.
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else None
    try:
        with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False) as c:
            request = c.build_request(
                "POST",
                destinations.pinned_url(target, address),
                content=body,
                headers=headers,
                extensions=extensions,
            )
            response = c.send(request, stream=True)
            try:
                read = bytearray()
                for chunk in response.iter_raw():
                    read += chunk
                    if len(read) >= BODY_LIMIT:
                        break
            finally:
                response.close()
    except httpx.HTTPError as error:
        return Outcome(took(), error=f"{type(error).__name__}: {error}"[:500])
    text = bytes(read[:BODY_LIMIT]).decode("utf-8", errors="replace")
    return Outcome(took(), status_code=response.status_code, body=text)


def _record(delivery: Delivery, outcome: Outcome, now: datetime) -> str | None:
    number = delivery.attempt_count + 1
    assert delivery.first_attempt_at is not None  # set by the claim
    deadline = delivery.first_attempt_at + WINDOW
    fields: dict[str, object] = {
        "attempt_count": number,
        "last_status_code": outcome.status_code,
    }
    if outcome.delivered:
        fields |= {"status": S.DELIVERED, "settled_at": now, "next_attempt_at": None, "reason": ""}
    else:
        reason = outcome.error or f"The endpoint answered {outcome.status_code}."
        if outcome.permanent or now >= deadline:
            gave_up = "" if outcome.permanent else " Gave up after 24 h of retries."
            fields |= {"status": S.FAILED, "settled_at": now, "next_attempt_at": None}
            fields["reason"] = (reason + gave_up)[:500]
        else:
            retry_at = min(now + timedelta(seconds=backoff(number)), deadline)
            fields |= {"status": S.RETRYING, "next_attempt_at": retry_at, "reason": reason[:500]}
    with transaction.atomic():
        row = Delivery.objects.select_for_update().filter(pk=delivery.pk).values_list("pk")
        if row.first() is None:
            return None  # its webhook was deleted meanwhile
        Attempt.objects.create(
            delivery=delivery,
            number=number,
            started_at=now,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            response_body=outcome.body,
            error=outcome.error[:500],
        )
        Delivery.objects.filter(pk=delivery.pk).update(**fields)
        if fields["status"] == S.RETRYING:
            wait = (fields["next_attempt_at"] - now).total_seconds()  # type: ignore[operator]
            outbox.enqueue(delivery.pk, countdown=wait)
        else:
            _send_next(delivery)
    logger.info(
        "webhook delivery %s attempt %d: %s",
        delivery.uuid,
        number,
        fields["status"],
        extra={"webhook": str(delivery.webhook.uuid), "status_code": outcome.status_code},
    )
    return str(fields["status"])


def _send_next(settled: Delivery) -> None:
    """The delivery that waited for `settled` (same webhook and subject) goes now."""
    if not settled.subject:
        return
    following = (
        Delivery.objects.filter(
            webhook_id=settled.webhook_id, subject=settled.subject, status__in=OPEN
        )
        .filter(id__gt=settled.id)
        .order_by("id")
        .values_list("pk", flat=True)
        .first()
    )
    if following is not None:
        outbox.enqueue(following)
