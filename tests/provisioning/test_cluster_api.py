"""The cluster API around the pipeline: validation, tenancy, roles, kubeconfigs, events."""

import base64
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from networking.models import Network, Port
from observability.models import Event
from portal.models import AuditEntry, Organisation, Quota
from provisioning import enqueue
from provisioning.models import Cluster, Hypervisor, IssuedCredential, Node, NodeStep

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]

GOOD = {
    "name": "web",
    "region": "demo",
    "pools": [{"name": "workers", "size": "small", "count": 3}],
}


def nothing_created() -> bool:
    return not (Cluster.objects.exists() or Node.objects.exists() or Port.objects.exists()) and all(
        h.vcpus_allocated == 0 for h in Hypervisor.objects.all()
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**GOOD, "name": ""}, "name"),
        ({k: v for k, v in GOOD.items() if k != "name"}, "name"),
        ({**GOOD, "name": "Bad_Name"}, "name"),
        ({**GOOD, "name": "x" * 41}, "name"),
        ({**GOOD, "region": "mars"}, "region"),
        ({**GOOD, "k3s_version": "v0.0.1"}, "k3s_version"),
        ({**GOOD, "pools": []}, "pools"),
        ({**GOOD, "pools": [{"name": "w", "size": "huge", "count": 1}]}, "pools"),
        ({**GOOD, "pools": [{"name": "w", "size": "small", "count": 0}]}, "pools"),
        ({**GOOD, "pools": [{"name": "w", "size": "small", "count": "three"}]}, "pools"),
        ({**GOOD, "pools": "workers"}, "pools"),
        ({**GOOD, "network": "not-a-uuid"}, "network"),
    ],
)
def test_bad_input_is_400_naming_the_field(demo_cloud, alice, acme, api_for, body, field) -> None:
    response = api_for(alice, acme).post("/api/v1/clusters", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert nothing_created()


def test_malformed_json_is_400(demo_cloud, alice, acme, api_for) -> None:
    response = api_for(alice, acme).post(
        "/api/v1/clusters", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert "detail" in response.json()
    assert nothing_created()


def test_duplicate_live_name_is_400(demo_cloud, alice, acme, api_for) -> None:
    client = api_for(alice, acme)
    assert client.post("/api/v1/clusters", GOOD, format="json").status_code == 202
    again = client.post("/api/v1/clusters", GOOD, format="json")
    assert again.status_code == 400 and "name" in again.json()


def test_quota_refuses_before_anything_is_created(demo_cloud, alice, acme, api_for) -> None:
    Quota.objects.filter(organisation=acme).update(nodes=2)
    response = api_for(alice, acme).post("/api/v1/clusters", GOOD, format="json")
    assert response.status_code == 400
    assert "nodes 3 of 2" in response.json()["pools"][0]
    assert nothing_created()


def test_a_create_reads_the_callers_role_and_the_quota_row_once(
    demo_cloud, alice, acme, api_for, monkeypatch
) -> None:
    """The permission and the service both ask the caller's role: one read. The quota row's
    lock finds it, and the network's and the nodes' checks read its limits. The new
    cluster's first event needs no lock on a row no other transaction can see."""
    monkeypatch.setattr(enqueue, "launch_cluster", lambda cluster_id: None)  # the create only
    Quota.objects.get_or_create(organisation=acme)  # as after the organisation's first launch
    with CaptureQueriesContext(connection) as seen:
        assert api_for(alice, acme).post("/api/v1/clusters", GOOD, format="json").status_code == 202
    run = [q["sql"] for q in seen.captured_queries]
    assert sum(sql.startswith('SELECT "portal_membership"."role"') for sql in run) == 1
    assert sum('FROM "portal_quota"' in sql for sql in run) == 3
    locks = [
        sql for sql in run if sql.startswith('SELECT "provisioning_cluster"."id" AS "pk" FROM')
    ]
    assert not locks
    assert list(Event.objects.values_list("progress", flat=True)) == [0]


def test_capacity_shortage_names_what_is_short(demo_cloud, alice, acme, api_for) -> None:
    Quota.objects.filter(organisation=acme).update(nodes=500, vcpus=5000, memory_mib=10**7)
    body = {**GOOD, "pools": [{"name": "big", "size": "large", "count": 40}]}
    response = api_for(alice, acme).post("/api/v1/clusters", body, format="json")
    assert response.status_code == 400
    assert "Not enough capacity in region demo" in response.json()["pools"][0]
    assert "of size large" in response.json()["pools"][0]
    assert nothing_created()
    assert not Network.objects.exists()  # the default network is not left behind either


def test_other_tenants_get_404_and_viewers_403(
    demo_cloud, alice, acme, bob, bobco, charlie, api_for
) -> None:
    cluster_id = api_for(alice, acme).post("/api/v1/clusters", GOOD, format="json").json()["id"]
    stranger = api_for(bob, bobco)
    base = f"/api/v1/clusters/{cluster_id}"
    assert stranger.get(base).status_code == 404
    assert stranger.get(f"{base}/events").status_code == 404
    assert stranger.get(f"{base}/kubeconfig").status_code == 404
    assert stranger.get(f"{base}/credentials").status_code == 404
    assert stranger.delete(base).status_code == 404
    assert stranger.patch(f"{base}/pools/workers", {"count": 1}, format="json").status_code == 404
    assert stranger.get("/api/v1/clusters").json()["results"] == []
    viewer = api_for(charlie, acme)
    assert viewer.get(base).status_code == 200
    assert viewer.delete(base).status_code == 403
    assert viewer.post(f"{base}/retry").status_code == 403
    assert viewer.patch(f"{base}/pools/workers", {"count": 4}, format="json").status_code == 403
    assert (
        viewer.post("/api/v1/clusters", {**GOOD, "name": "other"}, format="json").status_code == 403
    )
    assert Cluster.objects.get(uuid=cluster_id).status == "running"


def test_anonymous_is_401(demo_cloud) -> None:
    assert APIClient().get("/api/v1/clusters").status_code == 401
    assert APIClient().post("/api/v1/clusters", GOOD, format="json").status_code == 401


def _certificate(kubeconfig: dict[str, Any]) -> x509.Certificate:
    pem = base64.b64decode(kubeconfig["users"][0]["user"]["client-certificate-data"])
    return x509.load_pem_x509_certificate(pem)


def test_kubeconfigs_for_admin_and_viewer(demo_cloud, alice, acme, charlie, api_for) -> None:
    client = api_for(alice, acme)
    cluster = client.post("/api/v1/clusters", GOOD, format="json").json()
    server_ip = next(n["ip"] for n in cluster["nodes"] if n["is_server"])
    response = client.get(f"/api/v1/clusters/{cluster['id']}/kubeconfig?role=admin&ttl=3600")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/yaml"
    assert response["Content-Disposition"].startswith("attachment;")
    config = yaml.safe_load(response.content)
    assert config["clusters"][0]["cluster"]["server"] == f"https://{server_ip}:6443"
    cert = _certificate(config)
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "portal:admin"
    client_ca = x509.load_pem_x509_certificate(
        Cluster.objects.get(uuid=cluster["id"]).client_ca_cert.encode()
    )
    cert.verify_directly_issued_by(client_ca)
    viewer = api_for(charlie, acme)
    assert viewer.get(f"/api/v1/clusters/{cluster['id']}/kubeconfig?role=admin").status_code == 403
    viewer_config = yaml.safe_load(
        viewer.get(f"/api/v1/clusters/{cluster['id']}/kubeconfig?role=viewer").content
    )
    assert _certificate(viewer_config).subject.rfc4514_string() == "O=portal:viewer,CN=charlie"
    listed = client.get(f"/api/v1/clusters/{cluster['id']}/credentials").json()["results"]
    assert {(c["user"], c["role"]) for c in listed} == {("alice", "admin"), ("charlie", "viewer")}
    assert format(cert.serial_number, "x") in {c["serial"] for c in listed}
    assert AuditEntry.objects.filter(action="kubeconfig.issue").count() == 2


@pytest.mark.parametrize("query", ["ttl=604801", "ttl=0", "ttl=abc", "role=root"])
def test_kubeconfig_bad_parameters_are_400(demo_cloud, alice, acme, api_for, query) -> None:
    client = api_for(alice, acme)
    cluster_id = client.post("/api/v1/clusters", GOOD, format="json").json()["id"]
    response = client.get(f"/api/v1/clusters/{cluster_id}/kubeconfig?{query}")
    assert response.status_code == 400
    assert not IssuedCredential.objects.exists()


def test_events_are_paginated_and_resume_after(demo_cloud, alice, acme, api_for) -> None:
    client = api_for(alice, acme)
    cluster_id = client.post("/api/v1/clusters", GOOD, format="json").json()["id"]
    first = client.get(f"/api/v1/clusters/{cluster_id}/events?limit=5").json()
    assert len(first["results"]) == 5 and first["next"]
    second = client.get(first["next"]).json()
    assert second["results"][0]["id"] > first["results"][-1]["id"]
    after = first["results"][-1]["id"]
    resumed = client.get(f"/api/v1/clusters/{cluster_id}/events?after={after}&limit=1000").json()[
        "results"
    ]
    assert resumed[0]["id"] == second["results"][0]["id"]
    assert client.get(f"/api/v1/clusters/{cluster_id}/events?after=x").status_code == 400


def test_list_runs_constant_queries(
    demo_cloud, alice, acme, api_for, django_assert_max_num_queries
) -> None:
    client = api_for(alice, acme)
    client.post("/api/v1/clusters", GOOD, format="json")
    with django_assert_max_num_queries(12) as few:
        client.get("/api/v1/clusters")
    baseline = len(few.captured_queries)
    assert baseline > 0
    for name in ("b", "c", "d"):
        client.post(
            "/api/v1/clusters",
            {**GOOD, "name": name, "pools": [{"name": "p", "size": "small", "count": 2}]},
            format="json",
        )
    with django_assert_max_num_queries(baseline):
        assert client.get("/api/v1/clusters").json()["count"] == 4


def test_detail_runs_constant_queries(
    demo_cloud, alice, acme, api_for, django_assert_num_queries
) -> None:
    """What a watcher polling its cluster costs: the token, the cluster, its nodes, their
    steps, its pools with their sizes; whatever its size. The versions its region offers
    are read once per ten seconds per process, as are the steps' medians."""
    client = api_for(alice, acme)
    small = client.post("/api/v1/clusters", GOOD, format="json").json()["id"]
    six = [{"name": "workers", "size": "small", "count": 6}]
    large = client.post("/api/v1/clusters", {**GOOD, "name": "b", "pools": six}, format="json")
    with django_assert_num_queries(6):  # the region's versions too
        assert client.get(f"/api/v1/clusters/{small}").json()["upgrade"]["available"] == []
    for created in (small, large.json()["id"]):
        with django_assert_num_queries(5) as read:
            assert client.get(f"/api/v1/clusters/{created}").json()["status"] == "running"
        # Only what it shows: never the cluster's CA keys or join token, nor a host's columns.
        sql = " ".join(query["sql"] for query in read.captured_queries)
        for unread in ("server_ca_key_encrypted", "join_token_encrypted", '"uri"', "token_digest"):
            assert unread not in sql
    # Mid-launch the estimate reads every node's pool and steps: still nothing per node
    # (one query more: the steps' medians).
    Node.objects.filter(cluster__uuid=large.json()["id"]).update(status="provisioning")
    NodeStep.objects.filter(node__cluster__uuid=large.json()["id"], step="launch_k3s").update(
        started_at=None, finished_at=None
    )
    with django_assert_num_queries(6):
        assert (
            client.get(f"/api/v1/clusters/{large.json()['id']}").json()["eta_seconds"] is not None
        )


def test_two_organisations_same_default_cidr_distinct_segments(
    demo_cloud, alice, acme, bob, bobco, api_for
) -> None:
    a = api_for(alice, acme).post("/api/v1/clusters", GOOD, format="json").json()
    b = api_for(bob, bobco).post("/api/v1/clusters", GOOD, format="json").json()
    net_a, net_b = Network.objects.get(uuid=a["network"]), Network.objects.get(uuid=b["network"])
    assert net_a.cidr == net_b.cidr
    assert net_a.segment_id != net_b.segment_id


def test_organisation_field_is_the_callers(demo_cloud, alice, acme, api_for) -> None:
    cluster_id = api_for(alice, acme).post("/api/v1/clusters", GOOD, format="json").json()["id"]
    assert Cluster.objects.get(uuid=cluster_id).organisation == acme
    assert Organisation.objects.count() == 1
    assert User.objects.count() == 1


def test_a_user_in_no_organisation_lists_nothing_and_creates_nothing(demo_cloud) -> None:
    loner = User.objects.create_user("loner")
    client = APIClient()
    client.force_authenticate(loner)
    assert client.get("/api/v1/clusters").json()["results"] == []
    assert client.post("/api/v1/clusters", GOOD, format="json").status_code == 403
    assert nothing_created()
