"""Webhook deliveries against a real HTTP server on 127.0.0.1: signatures, retries and
giving up, order per cluster, the SSRF rule at save and at send, and DNS pinning."""

import hashlib
import hmac
import json
import socket
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from observability.webhooks import delivery, destinations, outbox, tasks
from observability.webhooks.models import Delivery, DeliveryStatus, EventType, Webhook
from portal.models import Organisation
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db(transaction=True)  # deliveries go on commit


def verify(secret: str, header: str, body: bytes, now: float) -> bool:
    """What a receiver does (the README's recipe)."""
    fields = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(fields["t"])
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    fresh = abs(now - timestamp) <= 300
    return fresh and hmac.compare_digest(expected.hexdigest(), fields["v1"])


def at(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment


def create(client: Any, url: str, **extra: Any) -> Any:
    body = {"url": url, "events": ["cluster.running", "node.failed"], **extra}
    return client.post("/api/v1/webhooks", body, format="json")


def emit_about(organisation: Organisation, cluster: str) -> Delivery:
    with transaction.atomic():
        [sent] = outbox.emit(
            organisation, EventType.CLUSTER_RUNNING, {"cluster": {"id": cluster}}, subject=cluster
        )
    return Delivery.objects.get(pk=sent.pk)


@pytest.fixture
def hooked(receiver: Receiver, alice: User, acme: Organisation, api_for: Any) -> dict[str, Any]:
    client = api_for(alice, acme)
    response = create(client, receiver.url)
    assert response.status_code == 201, response.json()
    return {"client": client, **response.json()}


def test_the_signature_verifies_with_the_secret_and_a_tampered_body_does_not(
    receiver: Receiver, hooked: dict[str, Any]
) -> None:
    secret = hooked["secret"]
    assert secret.startswith("whsec_")
    response = hooked["client"].post(f"/api/v1/webhooks/{hooked['id']}/ping")
    assert response.status_code == 202
    assert response.json()["status"] == "delivered"
    [got] = receiver.requests
    assert got.path == "/hook"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-Portal-Event"] == "ping"
    assert got.headers["X-Portal-Delivery"] == response.json()["id"]
    payload = json.loads(got.body)
    assert payload["type"] == "ping" and payload["id"] == response.json()["event_id"]
    header = got.headers["X-Portal-Signature"]
    assert verify(secret, header, got.body, time.time())
    assert not verify(secret, header, got.body.replace(b"ping", b"pong"), time.time())
    assert not verify("whsec_another", header, got.body, time.time())
    assert not verify(secret, header, got.body, time.time() + 301)  # a replay, later


def test_a_500_then_a_200_is_retried_and_ends_delivered(
    receiver: Receiver, hooked: dict[str, Any]
) -> None:
    client = hooked["client"]
    receiver.fail_next(1)
    pinged = client.post(f"/api/v1/webhooks/{hooked['id']}/ping").json()
    assert pinged["status"] == "retrying" and pinged["last_status_code"] == 500
    row = Delivery.objects.get(uuid=pinged["id"])
    # The retry's countdown ran at once (eager) and found it not due: one request so far.
    assert len(receiver.requests) == 1
    waited = at(row.next_attempt_at) - at(row.first_attempt_at)
    assert timedelta(seconds=30) <= waited <= timedelta(seconds=37)
    # A worker restarted meanwhile: the beat sweep finds it due and sends it.
    Delivery.objects.filter(pk=row.pk).update(next_attempt_at=row.first_attempt_at)
    assert tasks.sweep() == 1
    assert len(receiver.requests) == 2
    assert receiver.requests[0].body == receiver.requests[1].body  # the same event
    listed = client.get(f"/api/v1/webhooks/{hooked['id']}/deliveries").json()
    assert listed["count"] == 1
    [shown] = listed["results"]
    assert shown["status"] == "delivered" and shown["next_attempt_at"] is None
    assert [a["status_code"] for a in shown["attempts"]] == [500, 200]
    assert [a["response_body"] for a in shown["attempts"]] == ["boom", "ok"]
    assert all(a["duration_ms"] >= 0 and a["started_at"] for a in shown["attempts"])


def test_it_gives_up_24_hours_after_the_first_attempt(
    receiver: Receiver, hooked: dict[str, Any]
) -> None:
    receiver.fail_next(1000)
    pinged = hooked["client"].post(f"/api/v1/webhooks/{hooked['id']}/ping").json()
    row = Delivery.objects.get(uuid=pinged["id"])
    first = at(row.first_attempt_at)
    assert delivery.attempt(row.pk, now=first + timedelta(hours=23, minutes=59)) == "retrying"
    row.refresh_from_db()
    assert row.next_attempt_at == first + delivery.WINDOW  # the last try falls on the 24 h
    assert delivery.attempt(row.pk, now=row.next_attempt_at) == "failed"
    row.refresh_from_db()
    assert row.attempt_count == 3 and row.next_attempt_at is None
    assert "Gave up after 24 h" in row.reason
    assert delivery.attempt(row.pk, now=first + timedelta(days=2)) is None  # settled
    assert len(receiver.requests) == 3


def test_backoff_doubles_from_30_seconds_up_to_an_hour() -> None:
    bases = [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    for attempts, base in enumerate(bases, start=1):
        assert base <= delivery.backoff(attempts) <= base * 1.2


def test_a_clusters_second_event_waits_until_the_first_is_delivered(
    receiver: Receiver, hooked: dict[str, Any], acme: Organisation
) -> None:
    receiver.fail_next(1)
    first = emit_about(acme, "cluster-a")
    second = emit_about(acme, "cluster-a")
    other = emit_about(acme, "cluster-b")
    assert first.status == DeliveryStatus.RETRYING
    assert second.status == DeliveryStatus.PENDING and second.attempt_count == 0
    assert other.status == DeliveryStatus.DELIVERED  # another cluster is not held up
    later = at(first.next_attempt_at) + timedelta(hours=1)
    assert delivery.attempt(second.pk, now=later) is None  # held up by the first
    assert delivery.due(later) == [first.pk]
    assert delivery.attempt(first.pk, now=first.next_attempt_at) == "delivered"
    # Settling the first sent the second at once.
    assert Delivery.objects.get(pk=second.pk).status == DeliveryStatus.DELIVERED
    order = [r.delivery for r in receiver.requests]
    assert order == [str(first.uuid), str(other.uuid), str(first.uuid), str(second.uuid)]


def test_a_claimed_delivery_is_not_sent_twice(receiver: Receiver, hooked: dict[str, Any]) -> None:
    receiver.fail_next(1)
    pinged = hooked["client"].post(f"/api/v1/webhooks/{hooked['id']}/ping").json()
    row = Delivery.objects.get(uuid=pinged["id"])
    due_at = at(row.next_attempt_at)
    claimed = delivery._claim(row.pk, due_at)  # a worker took it and is sending
    assert claimed is not None
    assert delivery.attempt(row.pk, now=due_at) is None  # a second worker leaves it
    assert delivery.due(due_at) == []
    assert delivery.due(due_at + delivery.LEASE) == [row.pk]  # unless the first died
    assert len(receiver.requests) == 1


REFUSED = [
    "http://10.0.0.1/hook",
    "http://127.0.0.1:8080/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://localhost:8080/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "ftp://example.com/hook",
    "http:///hook",
    "https://user:pass@example.com/hook",
]


@pytest.mark.parametrize("url", REFUSED)
def test_unsafe_urls_are_refused_at_create_naming_url(
    url: str, alice: User, acme: Organisation, api_for: Any
) -> None:
    response = create(api_for(alice, acme), url)
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "invalid" and list(response.json()) == ["code", "url"]
    assert not Webhook.objects.exists()


def test_public_addresses_pass_and_an_allowance_covers_only_its_networks(settings: Any) -> None:
    ip = destinations.ipaddress.ip_address
    assert destinations.unsafe_kind(ip("93.184.216.34")) is None
    assert destinations.unsafe_kind(ip("2606:2800:220:1:248:1893:25c8:1946")) is None
    assert destinations.unsafe_kind(ip("100.64.0.1")) == "non-public"  # carrier-grade NAT
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    assert destinations.unsafe_kind(ip("127.0.0.1")) is None
    assert destinations.unsafe_kind(ip("::1")) == "loopback"
    assert destinations.unsafe_kind(ip("10.0.0.1")) == "private"


def test_a_name_with_one_unsafe_address_is_refused_though_another_is_allowed(
    receiver: Receiver, alice: User, acme: Organisation, api_for: Any, monkeypatch: Any
) -> None:
    """As localhost often does, the name answers 127.0.0.1 (allowed here) and ::1 (not):
    ANY address that is not safe refuses it."""
    real = socket.getaddrinfo
    both = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", receiver.port)),
        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", receiver.port, 0, 0)),
    ]

    def dual(host: Any, *args: Any, **kwargs: Any) -> Any:
        return both if host == "dual.example.test" else real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", dual)
    response = create(api_for(alice, acme), f"http://dual.example.test:{receiver.port}/hook")
    assert response.status_code == 400
    assert "::1, a loopback address" in response.json()["url"][0]


def test_the_rule_holds_again_at_send(
    receiver: Receiver, hooked: dict[str, Any], settings: Any
) -> None:
    settings.WEBHOOK_ALLOWED_NETWORKS = []  # staff withdrew the allowance after the create
    pinged = hooked["client"].post(f"/api/v1/webhooks/{hooked['id']}/ping").json()
    assert pinged["status"] == "failed"  # at once: no retry to an unsafe address
    assert "127.0.0.1" in pinged["reason"] and "loopback" in pinged["reason"]
    assert pinged["attempts"][0]["status_code"] is None
    assert receiver.requests == []


def test_the_connection_goes_to_the_address_checked_with_the_hosts_name(
    receiver: Receiver, hooked: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name answers 127.0.0.1 to the check, then nothing; the request
    still reaches the checked address, with the original Host header."""
    real = socket.getaddrinfo
    answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", receiver.port))]])

    def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.example.test":
            try:
                return next(answers)
            except StopIteration:
                raise socket.gaierror("no more answers") from None
        return real(host, *args, **kwargs)

    webhook = Webhook.objects.get(uuid=hooked["id"])
    Webhook.objects.filter(pk=webhook.pk).update(url=f"http://hooks.example.test:{receiver.port}/x")
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    pinged = hooked["client"].post(f"/api/v1/webhooks/{hooked['id']}/ping").json()
    assert pinged["status"] == "delivered", pinged
    [got] = receiver.requests
    assert got.headers["Host"] == f"hooks.example.test:{receiver.port}"
    assert got.path == "/x"


def test_https_names_the_host_for_tls_over_the_pinned_address() -> None:
    target = destinations.parse("https://hooks.example.com:8443/in?x=1")
    pinned = destinations.pinned_url(target, destinations.ipaddress.ip_address("2001:db8::1"))
    assert pinned == "https://[2001:db8::1]:8443/in?x=1"
    assert target.netloc == "hooks.example.com:8443" and target.host == "hooks.example.com"
