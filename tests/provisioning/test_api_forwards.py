"""A server node's Kubernetes API forwarded from its host's public address: a port per
server, unique per host, in the kubeconfig and the server's certificate SANs, given back
with the node. The packets' path is proven in tests/networking/test_isolation_netns.py."""

from typing import Any

import pytest
import yaml
from django.test import override_settings

from provisioning import guest_seed
from provisioning.models import Hypervisor, Node

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]

PUBLIC = {"hv-1": "203.0.113.1", "hv-2": "203.0.113.2", "hv-3": "203.0.113.3"}


def body(name: str) -> dict[str, Any]:
    return {"name": name, "region": "demo", "pools": [{"name": "w", "size": "small", "count": 1}]}


def server_of(cluster: dict[str, Any]) -> Node:
    return Node.objects.select_related("hypervisor", "port").get(
        cluster__uuid=cluster["id"], is_server=True
    )


@override_settings(API_FORWARD_PORT_MIN=16443, API_FORWARD_PORT_MAX=16444)
def test_each_server_gets_a_port_of_its_hosts_public_address(
    demo_cloud: Any, alice: Any, acme: Any, api_for: Any
) -> None:
    hosts = list(Hypervisor.objects.order_by("name"))
    for host in hosts:
        Hypervisor.objects.filter(pk=host.pk).update(public_address=PUBLIC[host.name])
    # One host only, so the servers share it.
    Hypervisor.objects.exclude(pk=hosts[0].pk).update(state="disabled")
    client = api_for(alice, acme)
    clusters = [
        client.post("/api/v1/clusters", body(f"c{i}"), format="json").json() for i in range(3)
    ]
    servers = [server_of(c) for c in clusters]
    assert [s.hypervisor_id for s in servers] == [hosts[0].pk] * 3
    # The range holds two ports: the third server keeps its tenant address only.
    assert [s.api_port for s in servers] == [16443, 16444, None]

    config = yaml.safe_load(
        client.get(f"/api/v1/clusters/{clusters[0]['id']}/kubeconfig?role=admin").content
    )
    public = PUBLIC[hosts[0].name]
    assert config["clusters"][0]["cluster"]["server"] == f"https://{public}:16443"
    assert f"K3S_TLS_SAN={public}" in guest_seed.user_data(servers[0], "t")
    third = yaml.safe_load(
        client.get(f"/api/v1/clusters/{clusters[2]['id']}/kubeconfig?role=admin").content
    )
    assert third["clusters"][0]["cluster"]["server"] == f"https://{servers[2].port.address}:6443"  # type: ignore[union-attr]
    assert "K3S_TLS_SAN=''" in guest_seed.user_data(servers[2], "t")

    # Deleting the first cluster gives its port back; the next server takes it.
    assert client.delete(f"/api/v1/clusters/{clusters[0]['id']}").status_code == 202
    assert Node.objects.get(pk=servers[0].pk).api_port is None
    fourth = server_of(client.post("/api/v1/clusters", body("c3"), format="json").json())
    assert fourth.api_port == 16443
