"""The staff dashboard (/staff/): launches per hour, step times, failures by code, hosts by
headroom and the slowest launches over the last 24 hours of every organisation, each
slow launch linking to a read-only view of its cluster; tenants never see any of it."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from provisioning import pipeline, staff_dashboard
from provisioning.models import Cluster, Hypervisor, Node
from tests.provisioning.factories import launch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]


@pytest.fixture
def history(demo_cloud, alice, acme, bob, bobco, api_for) -> dict[str, Cluster]:
    cache.clear()
    fast = launch(api_for(alice, acme), "fast")
    slow = launch(api_for(bob, bobco), "slow", count=2)
    # The slow one was asked for 70 s before it was ready.
    Cluster.objects.filter(pk=slow.pk).update(created_at=F("ready_at") - timedelta(seconds=70))
    # Two days ago: outside every figure.
    old = launch(api_for(alice, acme), "old")
    Cluster.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=2, seconds=30),
        ready_at=timezone.now() - timedelta(days=2),
    )
    agent = Node.objects.get(cluster=slow, is_server=False)
    with transaction.atomic():  # as the pipeline's callers hold one (its row locks)
        pipeline.fail_node(agent, "launch_k3s", "k3s_bundle_missing", "no bundle")
    return {"fast": fast, "slow": slow}


def test_the_figures_cover_the_last_day_of_every_organisation(history) -> None:
    shown = staff_dashboard.figures()
    bars = {bar.label: bar.value for bar in shown["launches"].bars}
    assert len(bars) == 24 and sum(bars.values()) == 2  # fast and slow, not old
    for cluster in history.values():
        cluster.refresh_from_db()
        assert bars[f"{cluster.created_at:%H}:00"] >= 1
    assert shown["failures"] == [{"error_code": "k3s_bundle_missing", "count": 1}]
    assert [c.name for c in shown["slowest"]] == ["slow", "fast"]
    overall = shown["step_times"]["rows"][0]
    assert overall["count"] == 2 and overall["p95"] == pytest.approx(70, abs=1)
    headroom = [row["headroom"] for row in shown["hosts"]]
    assert headroom == sorted(headroom) and len(headroom) == Hypervisor.objects.count()
    assert headroom[0] < 100  # the hosts holding the nodes come first


def test_staff_see_the_dashboard_and_any_clusters_timeline(history, staff, browser_for) -> None:
    browser = browser_for(staff)
    page = browser.get("/staff/").content.decode()
    slow = history["slow"]
    assert f'href="/staff/clusters/{slow.uuid}/"' in page
    assert "<code>k3s_bundle_missing</code>" in page
    assert page.count('<rect x="') >= 24  # a bar per hour
    timeline = browser.get(f"/staff/clusters/{slow.uuid}/").content.decode()
    assert f"Organisation {slow.organisation.name}" in timeline
    assert "slow-w-1: Launch K3s failed: no bundle" in timeline


def test_tenants_get_no_staff_pages(history, alice, browser_for) -> None:
    browser = browser_for(alice)
    for path in ("/staff/", f"/staff/clusters/{history['fast'].uuid}/"):
        assert browser.get(path).status_code == 404
