"""The issue's "done when": two organisations, one CIDR, two segments; clusters launched into
them with a firewall get unique addresses on their hosts' tenant networks; deleting the
clusters gives every address back and takes the networks off the hosts."""

from typing import Any

import pytest
from django.contrib.auth.models import User

from networking.models import Network, Port
from portal.models import Organisation
from provisioning.drivers import get_driver
from provisioning.models import Hypervisor, Region
from tests.provisioning.conftest import demo_cloud, guest_over_client  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]


def tenant_networks_on_hosts() -> set[tuple[str, str]]:
    found = set()
    for host in Hypervisor.objects.all():
        conn = get_driver(host.uri)._connection()  # type: ignore[attr-defined]
        found |= {(host.name, n) for n in conn.listNetworks() if n.startswith("tn-")}
    return found


def test_two_tenants_same_cidr_launch_and_give_everything_back(
    demo_cloud: Region,  # noqa: F811
    alice: User,
    acme: Organisation,
    bob: User,
    bobco: Organisation,
    api_for: Any,
) -> None:
    clusters = []
    for user, org in ((alice, acme), (bob, bobco)):
        client = api_for(user, org)
        client.default_format = "json"
        net = client.post("/api/v1/networks", {"name": "prod", "cidr": "10.7.0.0/24"}).json()
        rules = [{"direction": "ingress", "protocol": "tcp", "ports": "443", "cidr": "0.0.0.0/0"}]
        fw = client.post(
            "/api/v1/firewalls", {"name": "web", "network": net["id"], "rules": rules}
        ).json()
        body = {
            "name": "web",
            "region": "demo",
            "pools": [{"name": "workers", "size": "small", "count": 3}],
            "network": net["id"],
            "firewall": fw["id"],
        }
        created = client.post("/api/v1/clusters", body)
        assert created.status_code == 202, created.json()
        cluster = client.get(f"/api/v1/clusters/{created.json()['id']}").json()
        assert cluster["status"] == "running"
        clusters.append((client, cluster, net, fw))
    (_, _, net_a, _), (_, _, net_b, _) = clusters
    assert net_a["cidr"] == net_b["cidr"] and net_a["segment_id"] != net_b["segment_id"]
    for client, cluster, net, fw in clusters:
        ips = [n["ip"] for n in cluster["nodes"]]
        assert sorted(ips) == ["10.7.0.2", "10.7.0.3", "10.7.0.4"]
        assert client.get(f"/api/v1/networks/{net['id']}").json()["ips_in_use"] == 3
        rollout = client.get(f"/api/v1/firewalls/{fw['id']}").json()["rollout"]
        assert len(rollout) == 3 and not any(r["enforced"] for r in rollout)
    assert len(tenant_networks_on_hosts()) == 6  # each network on each of the three hosts
    for client, cluster, net, _ in clusters:
        assert client.delete(f"/api/v1/networks/{net['id']}").status_code == 409
        assert client.delete(f"/api/v1/clusters/{cluster['id']}").status_code == 202
    assert not Port.objects.exists()
    assert tenant_networks_on_hosts() == set()
    for client, _, net, _ in clusters:
        assert client.delete(f"/api/v1/networks/{net['id']}").status_code == 204
    assert not Network.objects.live().exists()
