"""A cluster's GET tells how long its launch still needs (`eta_seconds`), as its page does."""

import pytest

from provisioning import eta, recently
from provisioning.models import Node, NodeStep

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]

BODY = {"name": "web", "region": "demo", "pools": [{"name": "w", "size": "small", "count": 2}]}


def test_detail_has_eta_while_launching_and_none_once_running(
    demo_cloud, alice, acme, api_for
) -> None:
    client = api_for(alice, acme)
    cluster_id = client.post("/api/v1/clusters", BODY, format="json").json()["id"]
    detail = client.get(f"/api/v1/clusters/{cluster_id}").json()
    assert detail["status"] == "running" and detail["eta_seconds"] is None

    # Back in its last step: no finished history of running nodes, so the default remains.
    Node.objects.filter(cluster__uuid=cluster_id).update(status="provisioning")
    NodeStep.objects.filter(node__cluster__uuid=cluster_id, step="launch_k3s").update(
        finished_at=None
    )
    launching = client.get(f"/api/v1/clusters/{cluster_id}").json()["eta_seconds"]
    assert 0 < launching <= eta.DEFAULT_SECONDS
    # The list stays constant in queries: it has no estimate.
    assert "eta_seconds" not in client.get("/api/v1/clusters").json()["results"][0]


def test_the_medians_are_read_once_per_ten_seconds_per_process(
    demo_cloud, django_assert_num_queries, monkeypatch
) -> None:
    """Every client watching a launch asks for the estimate; the history moves slowly."""
    now = [1000.0]
    monkeypatch.setattr(recently.time, "monotonic", lambda: now[0])
    with django_assert_num_queries(1):
        first = eta.step_medians({1})
        assert eta.step_medians({1}) == first
    now[0] += eta.MEDIANS_SECONDS
    with django_assert_num_queries(1):
        eta.step_medians({1})
