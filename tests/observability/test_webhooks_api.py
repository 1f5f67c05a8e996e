"""The webhook API and page: roles, tenancy, validation, the secret shown once and kept
encrypted, audit."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from observability.webhooks.models import Webhook
from portal.models import AuditEntry, Organisation
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook(receiver: Receiver, alice: User, acme: Organisation, api_for: Any) -> dict[str, Any]:
    body = {"url": receiver.url, "events": ["cluster.failed"], "description": "pager"}
    response = api_for(alice, acme).post("/api/v1/webhooks", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_create_shows_the_secret_once_and_keeps_it_encrypted(
    hook: dict[str, Any], alice: User, acme: Organisation, api_for: Any
) -> None:
    client = api_for(alice, acme)
    assert hook["events"] == ["cluster.failed"] and hook["active"] is True
    shown = client.get(f"/api/v1/webhooks/{hook['id']}").json()
    assert "secret" not in shown and shown["description"] == "pager"
    assert all("secret" not in item for item in client.get("/api/v1/webhooks").json()["results"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM observability_webhook")
        [(stored,)] = cursor.fetchall()
    assert hook["secret"] not in stored
    assert Webhook.objects.get().secret == hook["secret"]


def test_changes_are_audited_without_the_secret_or_the_query(
    receiver: Receiver, alice: User, acme: Organisation, api_for: Any
) -> None:
    client = api_for(alice, acme)
    url = f"{receiver.url}?token=receivers-own"
    made = client.post("/api/v1/webhooks", {"url": url, "events": ["node.failed"]}, format="json")
    hook = made.json()
    patched = client.patch(f"/api/v1/webhooks/{hook['id']}", {"active": False}, format="json")
    assert patched.status_code == 200 and patched.json()["active"] is False
    assert client.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 204
    entries = AuditEntry.objects.filter(target_type="observability.webhook").order_by("id")
    assert [e.action for e in entries] == ["webhook.create", "webhook.update", "webhook.delete"]
    assert entries[1].details == {"active": False}
    for entry in entries:
        text = f"{entry.details} {entry.target_repr}"
        assert hook["secret"] not in text and "receivers-own" not in text
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    "events", [["cluster.running", "cluster.exploded"], [], ["ping"], "cluster.running"]
)
def test_unknown_events_are_a_400_naming_events(
    receiver: Receiver, alice: User, acme: Organisation, api_for: Any, events: Any
) -> None:
    body = {"url": receiver.url, "events": events}
    response = api_for(alice, acme).post("/api/v1/webhooks", body, format="json")
    assert response.status_code == 400
    assert "events" in response.json()
    assert not Webhook.objects.exists()


def test_a_patch_checks_url_and_events_too(
    hook: dict[str, Any], alice: User, acme: Organisation, api_for: Any
) -> None:
    client = api_for(alice, acme)
    path = f"/api/v1/webhooks/{hook['id']}"
    bad_url = client.patch(path, {"url": "http://169.254.169.254/"}, format="json")
    assert bad_url.status_code == 400 and "url" in bad_url.json()
    bad_events = client.patch(path, {"events": ["nope"]}, format="json")
    assert bad_events.status_code == 400 and "events" in bad_events.json()
    fine = client.patch(path, {"events": ["node.unhealthy", "cluster.deleted"]}, format="json")
    assert fine.json()["events"] == ["node.unhealthy", "cluster.deleted"]
    assert Webhook.objects.get().url == hook["url"]


def test_another_organisations_webhook_is_not_found(
    hook: dict[str, Any], bob: User, bobco: Organisation, api_for: Any
) -> None:
    client = api_for(bob, bobco)
    path = f"/api/v1/webhooks/{hook['id']}"
    assert client.get(path).status_code == 404
    assert client.patch(path, {"active": False}, format="json").status_code == 404
    assert client.delete(path).status_code == 404
    assert client.get(f"{path}/deliveries").status_code == 404
    assert client.post(f"{path}/ping").status_code == 404
    assert client.get("/api/v1/webhooks").json()["results"] == []
    assert Webhook.objects.get().active


def test_a_viewer_reads_but_cannot_change(
    hook: dict[str, Any], receiver: Receiver, charlie: User, acme: Organisation, api_for: Any
) -> None:
    client = api_for(charlie, acme)
    path = f"/api/v1/webhooks/{hook['id']}"
    assert [w["id"] for w in client.get("/api/v1/webhooks").json()["results"]] == [hook["id"]]
    assert client.get(path).status_code == 200
    assert client.get(f"{path}/deliveries").status_code == 200
    body = {"url": receiver.url, "events": ["cluster.running"]}
    assert client.post("/api/v1/webhooks", body, format="json").status_code == 403
    assert client.patch(path, {"active": False}, format="json").status_code == 403
    assert client.post(f"{path}/ping").status_code == 403
    assert client.delete(path).status_code == 403
    assert Webhook.objects.count() == 1 and Webhook.objects.get().active


def test_the_page_adds_shows_the_secret_once_and_deletes(
    receiver: Receiver, alice: User, charlie: User, browser_for: Any
) -> None:
    browser = browser_for(alice)
    form = {"url": receiver.url, "events": ["cluster.running", "node.failed"]}
    added = browser.post("/webhooks/", form)
    assert added.status_code == 200
    webhook = Webhook.objects.get()
    assert webhook.secret in added.content.decode()
    page = browser.get("/webhooks/").content.decode()
    assert receiver.url in page and webhook.secret not in page
    refused = browser.post("/webhooks/", {**form, "url": "http://10.0.0.1/"}).content.decode()
    assert "a private address" in refused and Webhook.objects.count() == 1
    viewer = browser_for(charlie)
    assert viewer.post("/webhooks/", form).status_code == 403
    assert viewer.post(f"/webhooks/{webhook.uuid}/delete/").status_code == 403
    assert "Add a webhook" not in viewer.get("/webhooks/").content.decode()
    assert browser.post(f"/webhooks/{webhook.uuid}/delete/").status_code == 302
    assert not Webhook.objects.exists()
