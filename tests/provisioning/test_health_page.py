"""Nodes' health on the cluster page and in the API: a verdict per running node with its
last hour of CPU and memory drawn as lines, pushed live when a heartbeat comes in."""

import re
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from cloud.asgi import application
from provisioning import guest_seed, guest_sim, live, node_health
from provisioning.models import Cluster, Node, NodeHealth, NodeHeartbeat

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]
TWO = {"name": "charts", "region": "demo", "pools": [{"name": "w", "size": "small", "count": 2}]}


@pytest.fixture
def running(demo_cloud, alice, acme, api_for) -> Cluster:
    cache.clear()
    assert api_for(alice, acme).post("/api/v1/clusters", TWO, format="json").status_code == 202
    return Cluster.objects.get()


def beat(node: Node, **changes: Any) -> None:
    payload = {"token": guest_seed.node_token(node), **guest_sim.heartbeat(node, timezone.now())}
    reply = Client().post(
        "/api/v1/guest/heartbeat", {**payload, **changes}, content_type="application/json"
    )
    assert reply.status_code == 200, reply.content


def test_the_page_charts_each_running_nodes_last_hour(running: Cluster, alice, browser_for):
    server = Node.objects.select_related("pool__size").get(is_server=True)
    sample = node_health.Sample(0.4, 50.0, 512, 1024, 20.0, "active")
    NodeHeartbeat.objects.filter(node=server).delete()  # the simulator's, kept just now:
    NodeHealth.objects.filter(node=server).update(sampled_at=None)  # these are kept too
    start = timezone.now() - timedelta(minutes=50)
    for minute in range(0, 50, 5):
        node_health.record(server, sample, None, start + timedelta(minutes=minute))
    page = browser_for(alice).get(f"/clusters/{running.uuid}/").content.decode()
    health = page[page.index('id="health"') : page.index('id="timeline"')]
    assert "2 of 2 running nodes healthy" in health
    row = health[health.index(f'id="health-{server.name}"') :]
    cpu_points = re.search(r'<polyline points="([^"]+)"', row)
    assert cpu_points is not None
    # Ten samples 50 to 5 minutes ago at 50 % CPU: on the chart's middle line, from its
    # left edge (the first sample) to nine tenths across (5 of the 50 minutes are left).
    points = [tuple(map(float, p.split(","))) for p in cpu_points.group(1).split()]
    assert len(points) == 10
    assert all(y == 14.0 for _, y in points)
    assert points[0][0] == 0.0 and 107 < points[-1][0] < 109
    assert "50 % of 1024 MiB" in row


def test_the_api_gives_each_running_nodes_verdict(running: Cluster, alice, acme, api_for):
    agent = Node.objects.get(is_server=False)
    beat(agent, k3s="inactive")
    nodes = api_for(alice, acme).get(f"/api/v1/clusters/{running.uuid}").json()["nodes"]
    verdicts = {n["name"]: n["health"] for n in nodes}
    assert verdicts[agent.name]["state"] == "unhealthy"
    assert verdicts[agent.name]["reason"] == "its k3s service is not running (inactive)"
    assert verdicts[agent.name]["k3s"] == "inactive"
    server = Node.objects.get(is_server=True)
    assert verdicts[server.name]["state"] == "healthy"


async def test_a_heartbeat_is_pushed_to_the_open_page(running: Cluster, alice, monkeypatch):
    monkeypatch.setattr(live, "HEALTH_POLL_SECONDS", 0.2)
    client = Client()
    await database_sync_to_async(client.force_login)(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    page = WebsocketCommunicator(
        application,
        f"/ws/clusters/{running.uuid}/live/?after=0",
        headers=[(b"origin", b"http://localhost"), (b"cookie", cookie)],
    )
    connected, _ = await page.connect()
    assert connected
    first = await page.receive_from(timeout=5)
    assert 'id="health"' in first
    server = await database_sync_to_async(Node.objects.select_related("pool__size").get)(
        is_server=True
    )
    await database_sync_to_async(node_health.record)(
        server,
        node_health.Sample(3.9, 97.0, 100, 1000, 20.0, "active"),
        None,
        timezone.now() + timedelta(minutes=1),
    )
    pushed = await page.receive_from(timeout=5)
    assert pushed.startswith('<section id="health" class="card" hx-swap-oob="true">')
    assert "97 %" in pushed
    await page.disconnect()
