"""Running nodes' heartbeats: the simulator sends them, the portal keeps an hour of them and
judges each node healthy or unhealthy (silent, k3s down, NotReady or missing in the
server's node list), with the changes in the timeline; the endpoint refuses bad input,
unknown tokens and nodes that no longer run."""

from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from observability.models import Event
from provisioning import guest_seed, guest_sim, node_health, pipeline
from provisioning.models import Cluster, Node, NodeHealth, NodeHeartbeat
from provisioning.tasks import guest_sim as sim_tasks
from provisioning.tasks import health

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]
THREE = {"name": "beats", "region": "demo", "pools": [{"name": "w", "size": "small", "count": 3}]}
HEARTBEAT = "/api/v1/guest/heartbeat"


@pytest.fixture
def running(demo_cloud, alice, acme, api_for) -> Cluster:
    cache.clear()
    assert api_for(alice, acme).post("/api/v1/clusters", THREE, format="json").status_code == 202
    cluster = Cluster.objects.get()
    assert cluster.status == "running"
    return cluster


def beat(client, node: Node, **changes: Any) -> Any:
    payload = {"token": guest_seed.node_token(node), **guest_sim.heartbeat(node, timezone.now())}
    return client.post(HEARTBEAT, {**payload, **changes}, content_type="application/json")


def states() -> dict[str, str]:
    return dict(NodeHealth.objects.values_list("node__name", "state"))


def later(seconds: float) -> None:
    """Move every heartbeat and readiness `seconds` into the past."""
    past = timedelta(seconds=seconds)
    NodeHealth.objects.update(seen_at=F("seen_at") - past)
    Node.objects.update(ready_at=F("ready_at") - past)


def test_a_launched_cluster_reports_healthy_nodes_with_their_figures(running: Cluster) -> None:
    assert states() == {n.name: "healthy" for n in Node.objects.all()}
    for node in Node.objects.select_related("pool__size"):
        sample = NodeHeartbeat.objects.get(node=node)
        assert sample.memory_total_mib == node.pool.size.memory_mib
        assert 0 < sample.memory_percent < 100
        assert sample.k3s_state == "active"
    # The server's beat lists the nodes K3s knows: all of them once they run.
    sim_tasks.simulate_heartbeats.apply()
    assert set(NodeHealth.objects.values_list("kube_status", flat=True)) == {"Ready"}


def test_a_silent_node_turns_unhealthy_then_healthy_when_it_beats_again(
    running: Cluster, settings, client
) -> None:
    agent = Node.objects.filter(is_server=False).first()
    assert agent is not None
    later(settings.HEARTBEAT_STALE_SECONDS - 5)
    assert health.watch_health.apply().get() == 0
    later(10)
    assert health.watch_health.apply().get() == 3
    row = NodeHealth.objects.get(node=agent)
    assert row.state == "unhealthy"
    assert row.reason.startswith("no heartbeat since ")
    assert Event.objects.filter(message__startswith=f"{agent.name} is unhealthy: no heartbeat")
    # Judged once: another round neither counts it nor adds an event.
    assert health.watch_health.apply().get() == 0
    assert Event.objects.filter(message__contains="is unhealthy").count() == 3

    answer = {"node": agent.name, "health": "healthy", "upgrade_to": None}
    assert beat(client, agent).json() == answer
    assert Event.objects.filter(message=f"{agent.name} is healthy again.").exists()


def test_a_node_whose_k3s_is_down_is_unhealthy(running: Cluster, client, settings) -> None:
    agent = Node.objects.filter(is_server=False).first()
    assert agent is not None
    settings.HEARTBEAT_SECONDS = 0  # keep every sample
    assert beat(client, agent, k3s="failed").json()["health"] == "unhealthy"
    assert NodeHealth.objects.get(node=agent).reason == "its k3s service is not running (failed)"
    assert beat(client, agent).json()["health"] == "healthy"


def test_the_servers_node_list_judges_its_agents_once_they_settled(
    running: Cluster, client, settings
) -> None:
    server = Node.objects.get(is_server=True)
    first, second = Node.objects.filter(is_server=False)
    listing = [{"name": server.name, "status": "Ready"}, {"name": first.name, "status": "NotReady"}]
    # Just joined: a NotReady or a missing agent is not held against it yet.
    beat(client, server, nodes=listing)
    assert states()[first.name] == states()[second.name] == "healthy"

    later(settings.HEARTBEAT_STALE_SECONDS + 1)
    beat(client, server, nodes=listing)
    beat(client, first)
    beat(client, second)
    reasons = dict(NodeHealth.objects.values_list("node__name", "reason"))
    assert states() == {server.name: "healthy", first.name: "unhealthy", second.name: "unhealthy"}
    assert reasons[first.name] == "Kubernetes reports it NotReady"
    assert reasons[second.name] == "the server's node list does not have it"

    listing += [{"name": second.name, "status": "Ready"}]
    listing[1]["status"] = "Ready,SchedulingDisabled"  # cordoned is still Ready
    beat(client, server, nodes=listing)
    assert set(states().values()) == {"healthy"}


def test_history_keeps_the_last_hour_and_two_samples_per_interval(running: Cluster, settings):
    node = Node.objects.select_related("pool__size").get(is_server=True)
    sample = node_health.Sample(0.1, 5.0, 100, 1000, 10.0, "active")
    start = timezone.now()
    NodeHeartbeat.objects.all().delete()
    NodeHealth.objects.all().delete()
    # Every 5 s for 90 minutes: a guest posting six times as often as it should, with the
    # beat's pruning every half interval.
    for tick in range(0, 90 * 60, 5):
        now = start + timedelta(seconds=tick)
        node_health.record(node, sample, None, now)
        if tick % (settings.HEARTBEAT_SECONDS // 2) == 0:
            node_health.prune_history(now)
    kept = NodeHeartbeat.objects.filter(node=node)
    history = timedelta(seconds=settings.HEARTBEAT_HISTORY_SECONDS)
    assert kept.earliest("at").at >= kept.latest("at").at - history
    assert kept.count() <= 2 * settings.HEARTBEAT_HISTORY_SECONDS // settings.HEARTBEAT_SECONDS + 1
    assert kept.count() >= settings.HEARTBEAT_HISTORY_SECONDS // settings.HEARTBEAT_SECONDS


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cpu_percent": 140}, "cpu_percent"),
        ({"memory_used_mib": -1}, "memory_used_mib"),
        ({"load1": "high"}, "load1"),
        ({"nodes": [{"name": "x"}]}, "nodes"),
    ],
)
def test_bad_heartbeats_are_400_with_the_field(running: Cluster, client, change, field) -> None:
    before = NodeHeartbeat.objects.count()
    reply = beat(client, Node.objects.get(is_server=True), **change)
    assert reply.status_code == 400
    assert reply.json()["code"] == "invalid"
    assert field in reply.json()
    assert NodeHeartbeat.objects.count() == before


def test_unknown_tokens_are_404_and_stopped_nodes_409(running: Cluster, client) -> None:
    node = Node.objects.get(is_server=True)
    assert beat(client, node, token="not-a-token").status_code == 404
    Node.objects.filter(pk=node.pk).update(status="failed")
    reply = beat(client, node)
    assert reply.status_code == 409
    assert reply.json()["code"] == "node_not_running"


def test_a_retried_node_starts_its_health_afresh(running: Cluster, settings) -> None:
    node = Node.objects.filter(is_server=False).first()
    assert node is not None
    later(settings.HEARTBEAT_STALE_SECONDS + 1)
    health.watch_health.apply()
    assert NodeHealth.objects.get(node=node).state == "unhealthy"
    Node.objects.filter(pk=node.pk).update(status="provisioning")

    with transaction.atomic():  # as the pipeline's callers hold one (its row locks)
        pipeline.node_ready(Node.objects.get(pk=node.pk), timezone.now())
    assert not NodeHealth.objects.filter(node=node).exists()


def test_a_nodes_first_ready_does_not_look_for_health(
    running: Cluster, django_assert_num_queries
) -> None:
    """Only a node that ran before can have health rows: a first launch skips the delete."""
    node = Node.objects.filter(is_server=False).first()
    assert node is not None
    Node.objects.filter(pk=node.pk).update(status="provisioning", ready_at=None)
    fresh = Node.objects.select_related("cluster").get(pk=node.pk)
    with transaction.atomic(), django_assert_num_queries(3) as seen:
        pipeline.node_ready(fresh, timezone.now())
    assert not any("nodehealth" in q["sql"] for q in seen.captured_queries)
    assert Node.objects.get(pk=node.pk).status == "running"


def test_an_agents_heartbeat_costs_four_queries(
    running: Cluster, client, settings, django_assert_num_queries
) -> None:
    """What every running node costs each interval: the node with what the answer reads
    (its K3s version too, not its cluster's secrets), its locked health row, the new
    sample, the verdict, between the transaction's BEGIN and COMMIT. The history's trim
    is the beat's."""
    settings.HEARTBEAT_SECONDS = 0  # keep every sample
    agent = Node.objects.filter(is_server=False).first()
    assert agent is not None
    version = agent.version.version
    beat(client, agent, k3s_version=version)
    with django_assert_num_queries(4 + 2) as seen:
        assert beat(client, agent, k3s_version=version).json()["health"] == "healthy"
    assert not any(q["sql"].startswith("DELETE") for q in seen.captured_queries)
    # Nor does it load (and decrypt) the cluster's CA keys and join token: the seed's
    # user-data alone needs them.
    assert not any("_encrypted" in q["sql"] for q in seen.captured_queries)
    assert NodeHeartbeat.objects.filter(node=agent).count() == 3


def test_a_first_heartbeat_writes_its_health_row_once(
    running: Cluster, client, django_assert_num_queries
) -> None:
    """The node, the look for its health row, the sample, the row's one upsert."""
    agent = Node.objects.select_related("pool__size").filter(is_server=False).first()
    assert agent is not None
    NodeHealth.objects.filter(node=agent).delete()
    with django_assert_num_queries(4 + 2):
        assert beat(client, agent).json()["health"] == "healthy"
    row = NodeHealth.objects.get(node=agent)
    assert (row.state, row.k3s_state) == ("healthy", "active")
    assert row.sampled_at == row.seen_at == NodeHeartbeat.objects.filter(node=agent).latest("id").at


def test_a_heartbeat_inside_half_an_interval_keeps_no_sample(running: Cluster, client) -> None:
    agent = Node.objects.filter(is_server=False).first()
    assert agent is not None
    before = NodeHeartbeat.objects.filter(node=agent).count()
    assert beat(client, agent).status_code == 200  # the launch's own beat was just now
    assert NodeHeartbeat.objects.filter(node=agent).count() == before
    row = NodeHealth.objects.get(node=agent)
    assert row.sampled_at is not None
    assert row.seen_at is not None and row.seen_at > row.sampled_at


def test_the_beat_drops_every_nodes_samples_older_than_the_history(
    running: Cluster, settings
) -> None:
    history = timedelta(seconds=settings.HEARTBEAT_HISTORY_SECONDS)
    old = NodeHeartbeat.objects.first()
    assert old is not None
    NodeHeartbeat.objects.filter(pk=old.pk).update(at=timezone.now() - history - timedelta(1))
    kept = NodeHeartbeat.objects.count() - 1
    health.watch_health.apply()
    assert NodeHeartbeat.objects.count() == kept
    assert not NodeHeartbeat.objects.filter(pk=old.pk).exists()
