"""Provisioning emits the webhook events where it decides them: a launch through the
pipeline on the test driver, a failed one, a deletion, a node gone silent."""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.utils import timezone

from observability.webhooks.models import Delivery, DeliveryStatus
from portal.models import Organisation
from provisioning import node_health
from provisioning.models import Region
from tests.provisioning.test_launch import launch
from tests.webhook_receiver import Receiver

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]

EVENTS = ["cluster.running", "cluster.failed", "cluster.deleted", "node.failed", "node.unhealthy"]


@pytest.fixture
def client(receiver: Receiver, alice: User, acme: Organisation, api_for: Any) -> Any:
    client = api_for(alice, acme)
    made = client.post("/api/v1/webhooks", {"url": receiver.url, "events": EVENTS}, format="json")
    assert made.status_code == 201
    return client


def received(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.requests]


def test_a_launch_is_one_cluster_running_delivery(
    demo_cloud: Region, client: Any, receiver: Receiver, acme: Organisation
) -> None:
    created = launch(client)
    assert list(Delivery.objects.values_list("event_type", "status")) == [
        ("cluster.running", DeliveryStatus.DELIVERED)
    ]
    [event] = received(receiver)
    assert event["type"] == "cluster.running" and event["organisation"] == str(acme.uuid)
    assert event["id"] == str(Delivery.objects.get().event_id) and event["created_at"]
    assert event["data"]["cluster"] == {
        "id": created["id"],
        "name": "web",
        "status": "running",
        "region": "demo",
    }


def test_a_failed_launch_is_node_failed_then_cluster_failed(
    demo_cloud: Region, client: Any, receiver: Receiver, settings: Any
) -> None:
    settings.CLOUD_FAULTS = "import_image:1"
    launch(client)
    events = received(receiver)
    types = [e["type"] for e in events]
    assert types.count("cluster.failed") == 1 and types.count("node.failed") == 3
    server = next(
        i
        for i, e in enumerate(events)
        if e["type"] == "node.failed" and e["data"]["node"]["is_server"]
    )
    assert server < types.index("cluster.failed")  # the server's failure failed the cluster
    assert events[server]["data"]["node"]["error"]["code"] == "injected_fault"
    assert events[server]["data"]["node"]["step"] == "import_image"
    failed = events[types.index("cluster.failed")]["data"]["cluster"]
    assert failed["status"] == "failed" and failed["reason"] == "The server node failed."
    # Received in the order they were emitted (one cluster: one line).
    emitted = Delivery.objects.order_by("id").values_list("event_id", flat=True)
    assert [e["id"] for e in events] == [str(event_id) for event_id in emitted]


def test_a_delete_is_one_cluster_deleted_delivery(
    demo_cloud: Region, client: Any, receiver: Receiver
) -> None:
    created = launch(client, count=1)
    assert client.delete(f"/api/v1/clusters/{created['id']}").status_code == 202
    assert [e["type"] for e in received(receiver)] == ["cluster.running", "cluster.deleted"]
    assert received(receiver)[-1]["data"]["cluster"]["status"] == "deleted"


def test_a_silent_node_is_node_unhealthy(
    demo_cloud: Region, client: Any, receiver: Receiver
) -> None:
    launch(client, count=2)
    later = timezone.now() + timedelta(seconds=django_settings.HEARTBEAT_STALE_SECONDS + 60)
    assert node_health.judge_silent(later) == 2
    unhealthy = [e for e in received(receiver) if e["type"] == "node.unhealthy"]
    assert len(unhealthy) == 2
    assert unhealthy[0]["data"]["node"]["health"]["reason"].startswith("no heartbeat since")
    assert node_health.judge_silent(later) == 0  # once: still unhealthy is no new event
    assert len(received(receiver)) == 3


def test_an_unsubscribed_or_inactive_webhook_hears_nothing(
    demo_cloud: Region, client: Any, receiver: Receiver
) -> None:
    [hook] = client.get("/api/v1/webhooks").json()["results"]
    client.patch(f"/api/v1/webhooks/{hook['id']}", {"events": ["node.failed"]}, format="json")
    launch(client, name="quiet")
    client.patch(f"/api/v1/webhooks/{hook['id']}", {"active": False}, format="json")
    assert not Delivery.objects.exists() and receiver.requests == []
