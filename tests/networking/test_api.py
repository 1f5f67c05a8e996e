"""/api/v1/networks and /api/v1/firewalls: shapes, validation, 409s, quota, tenant scoping."""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from networking import services
from networking.models import Firewall, Network
from portal.models import AuditEntry, Organisation
from provisioning import host_network
from provisioning.models import Cluster, Hypervisor, Region
from tests.networking.conftest import MakeCluster, default_firewall, owner

Api = Callable[[User, Organisation], APIClient]


@pytest.fixture
def api(api_for: Api) -> Api:
    """api_for, sending JSON bodies (the API parses JSON only)."""

    def make(user: User, organisation: Organisation) -> APIClient:
        client = api_for(user, organisation)
        client.default_format = "json"
        return client

    return make


@pytest.fixture
def as_alice(api: Api, alice: User, acme: Organisation, region: Region) -> APIClient:
    return api(alice, acme)


def test_create_and_read_a_network(as_alice: APIClient, acme: Organisation) -> None:
    response = as_alice.post("/api/v1/networks", {"name": "web", "cidr": "10.20.0.0/24"})
    assert response.status_code == 201, response.json()
    body = response.json()
    network = Network.objects.get(uuid=body["id"])
    assert body == {
        "id": str(network.uuid),
        "name": "web",
        "cidr": "10.20.0.0/24",
        "gateway": "10.20.0.1",
        "segment_id": network.segment_id,
        "region": "eu-1",
        "ips_in_use": 0,
        "is_default": False,
        "egress": False,
        "created_at": body["created_at"],
    }
    assert as_alice.get(f"/api/v1/networks/{network.uuid}").json() == body
    listed = as_alice.get("/api/v1/networks").json()
    assert listed == {"count": 1, "next": None, "previous": None, "results": [body]}
    assert AuditEntry.objects.filter(action="network.create", organisation=acme).exists()


def test_egress_is_off_unless_asked_for_and_reaches_the_hosts_spec(
    as_alice: APIClient, hypervisors: list[Hypervisor], make_cluster: MakeCluster
) -> None:
    plain = as_alice.post("/api/v1/networks", {"name": "quiet", "cidr": "10.20.0.0/24"})
    assert plain.status_code == 201 and plain.json()["egress"] is False
    out = as_alice.post(
        "/api/v1/networks", {"name": "out", "cidr": "10.21.0.0/24", "egress": True}, format="json"
    )
    assert out.status_code == 201 and out.json()["egress"] is True
    network = Network.objects.get(uuid=out.json()["id"])
    make_cluster(network, [hypervisors[0]])
    on_host = host_network.live_nodes().filter(cluster__network=network)
    assert host_network.network_spec(network, on_host, hypervisors[0]).egress is True
    bad = as_alice.post(
        "/api/v1/networks", {"name": "x", "cidr": "10.22.0.0/24", "egress": "maybe"}, format="json"
    )
    assert bad.status_code == 400 and "egress" in bad.json()
    assert not Network.objects.filter(name="x").exists()


def test_turning_egress_on_later_reaches_every_host_with_the_networks_nodes(
    as_alice: APIClient,
    acme_net: Network,
    hypervisors: list[Hypervisor],
    make_cluster: MakeCluster,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    make_cluster(acme_net, hypervisors)
    applied: list[tuple[str, bool]] = []
    sync = host_network.sync

    def recording(network: Network, hv: Hypervisor) -> None:
        applied.append((hv.name, network.egress))
        sync(network, hv)

    monkeypatch.setattr(host_network, "sync", recording)
    url = f"/api/v1/networks/{acme_net.uuid}"
    bad = as_alice.patch(url, {"egress": "sometimes"}, format="json")
    assert bad.status_code == 400 and "egress" in bad.json() and applied == []
    with django_capture_on_commit_callbacks(execute=True):
        done = as_alice.patch(url, {"egress": True}, format="json")
    assert done.status_code == 200 and done.json()["egress"] is True
    assert sorted(applied) == [("hv-1", True), ("hv-2", True)]  # each host's agent re-applied
    assert AuditEntry.objects.filter(action="network.update").count() == 1


def test_network_validation_names_the_field(as_alice: APIClient) -> None:
    bad = as_alice.post("/api/v1/networks", {"name": "web", "cidr": "8.8.8.0/24"})
    assert bad.status_code == 400
    assert "private ranges" in bad.json()["cidr"][0]
    bad = as_alice.post("/api/v1/networks", {"name": "Web Net", "cidr": "10.0.0.0/24"})
    assert bad.status_code == 400 and "name" in bad.json()
    bad = as_alice.post(
        "/api/v1/networks", {"name": "web", "cidr": "10.0.0.0/24", "region": "mars"}
    )
    assert bad.status_code == 400 and "region" in bad.json()
    assert as_alice.post(
        "/api/v1/networks", {"name": "web", "cidr": "10.0.0.0/24"}
    ).status_code == (201)
    again = as_alice.post("/api/v1/networks", {"name": "web", "cidr": "10.1.0.0/24"})
    assert again.status_code == 400 and "already" in again.json()["name"][0]
    assert Network.objects.count() == 1


def test_quota_and_exhaustion_are_400s(as_alice: APIClient, acme: Organisation, settings) -> None:
    settings.NETWORK_VNI_MIN, settings.NETWORK_VNI_MAX = 9000, 9001
    acme.quota.networks = 3
    acme.quota.save()
    for i in range(2):
        assert (
            as_alice.post("/api/v1/networks", {"name": f"n{i}", "cidr": "10.0.0.0/24"}).status_code
            == 201
        )
    full = as_alice.post("/api/v1/networks", {"name": "n2", "cidr": "10.0.0.0/24"})
    assert full.status_code == 400 and "No free network segment" in full.json()["region"][0]
    settings.NETWORK_VNI_MAX = 9999
    assert (
        as_alice.post("/api/v1/networks", {"name": "n2", "cidr": "10.0.0.0/24"}).status_code == 201
    )
    over = as_alice.post("/api/v1/networks", {"name": "n3", "cidr": "10.0.0.0/24"})
    assert over.status_code == 400 and "may have 3 networks" in over.json()["quota"][0]


def test_delete_in_use_is_409_naming_the_clusters(
    as_alice: APIClient,
    acme_net: Network,
    make_cluster: MakeCluster,
    hypervisors: list[Hypervisor],
) -> None:
    make_cluster(acme_net, hypervisors[:1], name="shop")
    make_cluster(acme_net, hypervisors[:1], name="blog")
    response = as_alice.delete(f"/api/v1/networks/{acme_net.uuid}")
    assert response.status_code == 409
    assert response.json()["code"] == "in_use"
    assert response.json()["clusters"] == ["blog", "shop"]
    assert "blog, shop" in response.json()["detail"]
    assert Network.objects.live().filter(pk=acme_net.pk).exists()


def test_delete_unused_and_retire_used_by_deleted_clusters(
    as_alice: APIClient,
    acme: Organisation,
    acme_net: Network,
    make_cluster: MakeCluster,
    hypervisors: list[Hypervisor],
) -> None:
    cluster = make_cluster(acme_net, hypervisors[:1], allocate=False)
    Cluster.objects.filter(pk=cluster.pk).update(status="deleted")
    vni = acme_net.segment_id
    assert as_alice.delete(f"/api/v1/networks/{acme_net.uuid}").status_code == 204
    assert as_alice.get(f"/api/v1/networks/{acme_net.uuid}").status_code == 404
    retired = Network.objects.get(pk=acme_net.pk)
    assert retired.deleted_at is not None and retired.segment_id > 2**24 - 1
    # Name and VNI are free again.
    again = as_alice.post("/api/v1/networks", {"name": "web", "cidr": "10.20.0.0/24"}).json()
    assert again["segment_id"] == vni
    unused = again["id"]
    assert as_alice.delete(f"/api/v1/networks/{unused}").status_code == 204
    assert not Network.objects.filter(uuid=unused).exists()
    assert not Firewall.objects.filter(network__uuid=unused).exists()


RULES = [
    {"direction": "ingress", "protocol": "tcp", "ports": "443", "cidr": "0.0.0.0/0"},
    {"direction": "egress", "protocol": "all", "cidr": "0.0.0.0/0", "label": "out"},
]


def test_firewall_lifecycle(
    as_alice: APIClient,
    acme_net: Network,
    make_cluster: MakeCluster,
    hypervisors: list[Hypervisor],
    django_capture_on_commit_callbacks,
) -> None:
    created = as_alice.post(
        "/api/v1/firewalls", {"name": "web", "network": str(acme_net.uuid), "rules": RULES}
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["name"], body["network"], body["rules"], body["revision"]) == (
        "web",
        str(acme_net.uuid),
        RULES,
        1,
    )
    assert body["rollout"] == []
    firewall = Firewall.objects.get(uuid=body["id"])
    cluster = make_cluster(acme_net, hypervisors, firewall=firewall)
    with django_capture_on_commit_callbacks(execute=True):
        as_alice.patch(f"/api/v1/firewalls/{firewall.uuid}", {"rules": RULES[:1]})
    patched = as_alice.get(f"/api/v1/firewalls/{firewall.uuid}")
    assert patched.status_code == 200
    assert patched.json()["revision"] == 2 and patched.json()["rules"] == RULES[:1]
    # The rollout ran (eagerly, at commit): each host says it is not enforced, and why.
    assert [
        (r["hypervisor"], r["revision"], r["current"], r["enforced"], r["reason"])
        for r in patched.json()["rollout"]
    ] == [
        ("hv-1", 2, True, False, "test driver has no nwfilter API"),
        ("hv-2", 2, True, False, "test driver has no nwfilter API"),
    ]
    in_use = as_alice.delete(f"/api/v1/firewalls/{firewall.uuid}")
    assert in_use.status_code == 409 and in_use.json()["clusters"] == [cluster.name]
    Cluster.objects.filter(pk=cluster.pk).update(status="deleted")
    assert as_alice.delete(f"/api/v1/firewalls/{firewall.uuid}").status_code == 204
    assert as_alice.get(f"/api/v1/firewalls/{firewall.uuid}").status_code == 404


def test_rule_errors_name_the_rule_and_field(as_alice: APIClient, acme_net: Network) -> None:
    bad = [*RULES, {"direction": "ingress", "protocol": "icmp", "ports": "80", "cidr": "0.0.0.0/0"}]
    response = as_alice.post(
        "/api/v1/firewalls", {"name": "web", "network": str(acme_net.uuid), "rules": bad}
    )
    assert response.status_code == 400
    assert list(response.json()["rules"]) == ["2"]
    assert "only to tcp and udp" in response.json()["rules"]["2"]["ports"][0]
    fw = default_firewall(acme_net)
    patch = as_alice.patch(f"/api/v1/firewalls/{fw.uuid}", {"rules": [{"cidr": "x"}]})
    assert patch.status_code == 400
    assert set(patch.json()["rules"]["0"]) == {"direction", "protocol", "cidr"}
    assert not Firewall.objects.filter(name="web").exists()


def test_default_firewall_cannot_be_deleted_alone(as_alice: APIClient, acme_net: Network) -> None:
    response = as_alice.delete(f"/api/v1/firewalls/{default_firewall(acme_net).uuid}")
    assert response.status_code == 400 and "firewall" in response.json()


def test_list_endpoints_run_constant_queries(
    as_alice: APIClient,
    acme: Organisation,
    region: Region,
    make_cluster: MakeCluster,
    hypervisors: list[Hypervisor],
    django_assert_max_num_queries,
) -> None:
    for i in range(4):
        network = services.create_network(owner(acme), acme, region, f"n{i}", "10.0.0.0/24")
        make_cluster(network, hypervisors)
        Firewall.objects.filter(network=network).update(revision=2)
    with django_assert_max_num_queries(8):
        assert len(as_alice.get("/api/v1/networks").json()["results"]) == 4
    with django_assert_max_num_queries(9):
        assert len(as_alice.get("/api/v1/firewalls").json()["results"]) == 4
    assert {n["ips_in_use"] for n in as_alice.get("/api/v1/networks").json()["results"]} == {2}


# --- Tenant scoping of every endpoint ------------------------------------------------------


@pytest.fixture
def acme_objects(acme_net: Network) -> tuple[str, str]:
    return str(acme_net.uuid), str(default_firewall(acme_net).uuid)


def test_another_organisation_sees_nothing(
    api: Api, bob: User, bobco: Organisation, acme_objects: tuple[str, str]
) -> None:
    net, fw = acme_objects
    client = api(bob, bobco)
    assert client.get("/api/v1/networks").json()["results"] == []
    assert client.get("/api/v1/firewalls").json()["results"] == []
    for url in (f"/api/v1/networks/{net}", f"/api/v1/firewalls/{fw}"):
        assert client.get(url).status_code == 404
        assert client.delete(url).status_code == 404
    assert client.patch(f"/api/v1/firewalls/{fw}", {"name": "x"}).status_code == 404
    assert client.patch(f"/api/v1/networks/{net}", {"egress": True}).status_code == 404
    foreign = client.post("/api/v1/firewalls", {"name": "x", "network": net, "rules": []})
    assert foreign.status_code == 400 and "network" in foreign.json()
    assert Network.objects.filter(organisation=bobco).count() == 0


def test_viewer_reads_but_cannot_change(
    api: Api, charlie: User, acme: Organisation, acme_objects: tuple[str, str]
) -> None:
    net, fw = acme_objects
    client = api(charlie, acme)
    assert client.get(f"/api/v1/networks/{net}").status_code == 200
    assert client.get(f"/api/v1/firewalls/{fw}").status_code == 200
    assert client.post("/api/v1/networks", {"name": "x", "cidr": "10.0.0.0/24"}).status_code == 403
    assert client.delete(f"/api/v1/networks/{net}").status_code == 403
    assert client.post("/api/v1/firewalls", {"name": "x", "network": net}).status_code == 403
    assert client.patch(f"/api/v1/firewalls/{fw}", {"name": "x"}).status_code == 403
    assert client.patch(f"/api/v1/networks/{net}", {"egress": True}).status_code == 403
    assert client.delete(f"/api/v1/firewalls/{fw}").status_code == 403
    assert Network.objects.count() == 1 and Firewall.objects.count() == 1
    assert not Network.objects.get().egress


def test_anonymous_gets_401(acme_objects: tuple[str, str]) -> None:
    net, fw = acme_objects
    client = APIClient()
    client.default_format = "json"
    for url in (
        "/api/v1/networks",
        "/api/v1/firewalls",
        f"/api/v1/networks/{net}",
        f"/api/v1/firewalls/{fw}",
    ):
        assert client.get(url).status_code == 401
    assert client.post("/api/v1/networks", {"name": "x", "cidr": "10.0.0.0/24"}).status_code == 401
    assert client.delete(f"/api/v1/networks/{net}").status_code == 401
    assert client.patch(f"/api/v1/firewalls/{fw}", {}).status_code == 401
