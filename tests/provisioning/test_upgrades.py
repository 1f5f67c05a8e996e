"""Rolling K3s upgrades through the pipeline on the test driver, the simulator playing the
guests (its heartbeats carry the server's in-place upgrade): server first, then each agent
replaced on the new version's image; refusals (downgrade, a skipped minor, no image, one
under way); a failed replacement stops the rollout with the cluster serving, and asking
again resumes it; a rollout left by a stopped worker goes on from beat."""

from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db.models import F

from portal.models import AuditEntry
from provisioning import enqueue, guest_seed, recently, upgrades
from provisioning.models import BaseImage, Cluster, K3sVersion, Node, Region
from provisioning.tasks import guest_sim as sim_tasks
from provisioning.tasks import upgrades as upgrade_tasks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]
OLD, NEW = "v1.30.8+k3s1", "v1.31.4+k3s1"


@pytest.fixture
def old_cluster(demo_cloud: Region, alice, acme, api_for) -> Cluster:
    cache.clear()
    pools = [{"name": "w", "size": "small", "count": 3}]
    body = {"name": "up", "region": "demo", "k3s_version": OLD, "pools": pools}
    assert api_for(alice, acme).post("/api/v1/clusters", body, format="json").status_code == 202
    cluster = Cluster.objects.get()
    assert cluster.status == "running"
    return cluster


def upgrade(api: Any, cluster: Cluster, version: str = NEW) -> Any:
    url = f"/api/v1/clusters/{cluster.uuid}/upgrade"
    return api.post(url, {"k3s_version": version}, format="json")


def test_a_rolling_upgrade_goes_server_first_then_replaces_each_agent(
    old_cluster: Cluster, alice, acme, api_for
) -> None:
    api = api_for(alice, acme)
    shown = api.get(f"/api/v1/clusters/{old_cluster.uuid}").json()
    assert shown["upgrade"] == {"to": None, "started_at": None, "error": "", "available": [NEW]}
    server = old_cluster.nodes.get(is_server=True)
    old_agents = set(old_cluster.nodes.filter(is_server=False).values_list("name", flat=True))

    started = upgrade(api, old_cluster)
    assert started.status_code == 202, started.json()
    assert started.json()["upgrade"]["to"] == NEW
    # The server's next heartbeat asks it to upgrade in place; the one after reports it.
    sim_tasks.simulate_heartbeats.apply()
    sim_tasks.simulate_heartbeats.apply()

    old_cluster.refresh_from_db()
    assert (old_cluster.k3s_version.version, old_cluster.upgrade_to) == (NEW, None)
    running = list(old_cluster.nodes.filter(status="running"))
    assert len(running) == 3 and {n.version.version for n in running} == {NEW}
    assert server.pk in {n.pk for n in running}  # the same VM, address and disk
    assert Node.objects.filter(name__in=old_agents, status="deleted").count() == 2
    new_agent = next(n for n in running if not n.is_server)
    assert f"K3S_VERSION={NEW}" in guest_seed.user_data(new_agent, "t").replace("'", "")
    messages = list(old_cluster.events.values_list("message", flat=True))
    assert f"{server.name} runs {NEW} (upgraded in place)." in messages
    assert f"Upgraded to {NEW}." in messages
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"cluster.upgrade", "cluster.upgraded", "node.replace"} <= actions
    after = api.get(f"/api/v1/clusters/{old_cluster.uuid}").json()
    assert after["k3s_version"] == NEW and after["upgrade"]["available"] == []
    assert {n["k3s_version"] for n in after["nodes"]} == {NEW}


@pytest.mark.parametrize(
    ("version", "why"),
    [
        (OLD, "is not newer"),
        ("v1.29.1+k3s1", "is not newer"),
        ("v1.32.0+k3s1", "skips a minor"),
        ("v1.31.9+k3s1", "has no base image"),
        ("v9.9.9", "Object with version=v9.9.9 does not exist."),
    ],
)
def test_refused_targets_are_a_400_on_k3s_version(
    old_cluster: Cluster, alice, acme, api_for, version: str, why: str
) -> None:
    region = Region.objects.get(slug="demo")
    for known in ("v1.29.1+k3s1", "v1.32.0+k3s1", "v1.31.9+k3s1"):
        added = K3sVersion.objects.create(version=known)
        if known != "v1.31.9+k3s1":
            BaseImage.objects.create(version=added, region=region, volume_name=f"{known}.qcow2")
    answer = upgrade(api_for(alice, acme), old_cluster, version)
    assert answer.status_code == 400
    assert why in answer.json()["k3s_version"][0]
    old_cluster.refresh_from_db()
    assert old_cluster.upgrade_to is None


def test_roles_tenancy_and_one_at_a_time(
    old_cluster: Cluster, alice, acme, charlie, bob, bobco, api_for, settings
) -> None:
    assert upgrade(api_for(charlie, acme), old_cluster).status_code == 403
    assert upgrade(api_for(bob, bobco), old_cluster).status_code == 404
    settings.GUEST_SIMULATOR = False  # the server never answers: the rollout waits
    assert upgrade(api_for(alice, acme), old_cluster).status_code == 202
    region = Region.objects.get(slug="demo")
    other = K3sVersion.objects.create(version="v1.31.5+k3s1")
    BaseImage.objects.create(version=other, region=region, volume_name="other.qcow2")
    clash = upgrade(api_for(alice, acme), old_cluster, other.version)
    assert clash.status_code == 409 and clash.json()["code"] == "conflict"


def test_a_failed_replacement_stops_the_rollout_and_asking_again_resumes(
    old_cluster: Cluster, alice, acme, api_for, settings
) -> None:
    api = api_for(alice, acme)
    settings.CLOUD_FAULTS = "start_vm:1"  # the new agents cannot start
    assert upgrade(api, old_cluster).status_code == 202
    sim_tasks.simulate_heartbeats.apply()
    sim_tasks.simulate_heartbeats.apply()
    old_cluster.refresh_from_db()
    assert old_cluster.status == "degraded"
    assert old_cluster.upgrade_error.startswith(f"Upgrade to {NEW} stopped: ")
    # Still serving: the server (upgraded) and both old agents run.
    assert old_cluster.nodes.filter(status="running").count() == 3

    settings.CLOUD_FAULTS = ""
    assert api.post(f"/api/v1/clusters/{old_cluster.uuid}/retry").status_code == 202
    assert upgrade(api, old_cluster).status_code == 202  # the same target: resume
    old_cluster.refresh_from_db()
    assert (old_cluster.k3s_version.version, old_cluster.status) == (NEW, "running")
    assert old_cluster.upgrade_error == ""


def test_a_server_that_never_reports_the_version_stops_the_rollout(
    old_cluster: Cluster, alice, acme, api_for, settings
) -> None:
    settings.GUEST_SIMULATOR = False
    assert upgrade(api_for(alice, acme), old_cluster).status_code == 202
    assert upgrade_tasks.roll_upgrades.apply().get() == 1
    Cluster.objects.update(upgrade_started_at=F("upgrade_started_at") - timedelta(minutes=11))
    upgrade_tasks.roll_upgrades.apply()
    old_cluster.refresh_from_db()
    assert "did not report" in old_cluster.upgrade_error and old_cluster.status == "degraded"
    assert upgrade_tasks.roll_upgrades.apply().get() == 0  # stopped: beat leaves it


def test_a_rollout_left_by_a_stopped_worker_goes_on_from_beat(
    old_cluster: Cluster, alice, acme, api_for, monkeypatch
) -> None:
    sent = enqueue.send
    monkeypatch.setattr(
        enqueue,
        "send",
        lambda name, *a, **k: None if name == enqueue.ROLL_UPGRADE else sent(name, *a, **k),
    )
    assert upgrade(api_for(alice, acme), old_cluster).status_code == 202
    sim_tasks.simulate_heartbeats.apply()
    sim_tasks.simulate_heartbeats.apply()  # the server is upgraded; its roll message is lost
    assert Node.objects.filter(replaces__isnull=False).count() == 0
    monkeypatch.setattr(enqueue, "send", sent)  # a worker again
    for _ in range(3):
        upgrade_tasks.roll_upgrades.apply()
    old_cluster.refresh_from_db()
    assert old_cluster.k3s_version.version == NEW


def test_the_page_offers_the_upgrade_and_shows_it_under_way(
    old_cluster: Cluster, alice, browser_for, settings
) -> None:
    settings.GUEST_SIMULATOR = False  # the server does not answer: the rollout waits
    client = browser_for(alice)
    page = client.get(f"/clusters/{old_cluster.uuid}/").content.decode()
    assert "Upgrade available" in page and f'<option value="{NEW}">' in page
    assert page.count(f"<code>{OLD}</code>") == 3  # each node's version

    refused = client.post(f"/clusters/{old_cluster.uuid}/upgrade/", {"k3s_version": "v9"})
    assert refused.status_code == 302
    assert Cluster.objects.get(pk=old_cluster.pk).upgrade_to is None

    assert (
        client.post(f"/clusters/{old_cluster.uuid}/upgrade/", {"k3s_version": NEW}).status_code
        == 302
    )
    page = client.get(f"/clusters/{old_cluster.uuid}/").content.decode()
    assert f"Upgrading to <strong>{NEW}</strong>: 0 of 3 nodes on it" in page
    assert "Upgrade available" not in page


def test_the_offered_versions_are_read_once_per_ten_seconds_per_process(
    old_cluster: Cluster, monkeypatch, django_assert_num_queries
) -> None:
    """Every watcher's GET shows them; an image published since shows within ten seconds."""
    now = [1000.0]
    monkeypatch.setattr(recently.time, "monotonic", lambda: now[0])
    assert old_cluster.k3s_version.version == OLD  # loaded, as the cluster's GET has it
    with django_assert_num_queries(1):
        assert [v.version for v in upgrades.available(old_cluster)] == [NEW]
        assert [v.version for v in upgrades.available(old_cluster)] == [NEW]
    newer = K3sVersion.objects.create(version="v1.31.9+k3s1")
    BaseImage.objects.create(version=newer, region=old_cluster.region, volume_name="n.qcow2")
    assert [v.version for v in upgrades.available(old_cluster)] == [NEW]
    now[0] += upgrades.OFFERED_SECONDS
    assert [v.version for v in upgrades.available(old_cluster)] == [newer.version, NEW]
