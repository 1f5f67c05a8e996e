"""The launch pipeline end to end on libvirt's test driver, with the simulated guest."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from networking.models import Port
from observability.models import Event
from portal.models import Organisation
from provisioning import addresses, pipeline, steps
from provisioning.drivers import get_driver
from provisioning.models import Cluster, Hypervisor, Node, NodeStep, Region

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]


def allocations() -> dict[str, tuple[int, int]]:
    return {h.name: (h.vcpus_allocated, h.memory_mib_allocated) for h in Hypervisor.objects.all()}


def launch(client: Any, name: str = "web", count: int = 3, **extra: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "region": "demo",
        "pools": [{"name": "workers", "size": "small", "count": count}],
        **extra,
    }
    response = client.post("/api/v1/clusters", body, format="json")
    assert response.status_code == 202, response.json()
    return response.json()


def domains_on_hosts() -> set[str]:
    names = set()
    for host in Hypervisor.objects.all():
        names |= {d.name for d in get_driver(host.uri).list_domains("k3s-") if d.state == "running"}
    return names


def volumes_on_hosts() -> set[str]:
    names = set()
    for host in Hypervisor.objects.all():
        names |= {
            n.volume_name
            for n in Node.objects.all()
            if get_driver(host.uri).volume_exists(host.storage_pool, n.volume_name)
        }
    return names


def test_three_nodes_reach_running_through_five_steps_on_three_hosts(
    demo_cloud: Region, alice: User, acme: Organisation, api_for: Any
) -> None:
    client = api_for(alice, acme)
    created = launch(client)
    assert created["name"] == "web" and created["region"] == "demo"
    cluster = client.get(f"/api/v1/clusters/{created['id']}").json()
    assert cluster["status"] == "running"
    nodes = cluster["nodes"]
    assert len({n["hypervisor"] for n in nodes}) == 3
    assert all(n["status"] == "running" and n["ip"] for n in nodes)
    assert len({n["ip"] for n in nodes}) == 3
    assert sum(n["is_server"] for n in nodes) == 1
    assert NodeStep.objects.filter(finished_at__isnull=False).count() == 3 * len(steps.TABLE)
    events = client.get(f"/api/v1/clusters/{created['id']}/events?after=0").json()["results"]
    for node in nodes:
        mine = [(e["step"], e["state"]) for e in events if e["node"] == node["name"]]
        assert mine == [(step, state) for step in steps.NAMES for state in ("started", "done")]
    assert events[-1]["progress"] == 100
    assert "Cluster running in" in events[-1]["message"]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    domain_names = {Node.objects.get(name=n["name"]).domain_name for n in nodes}
    assert domain_names <= domains_on_hosts()


def test_delete_gives_everything_back(demo_cloud, alice, acme, api_for) -> None:
    before = allocations()
    client = api_for(alice, acme)
    created = launch(client)
    assert allocations() != before
    assert client.delete(f"/api/v1/clusters/{created['id']}").status_code == 202
    cluster = Cluster.objects.get(uuid=created["id"])
    assert cluster.status == "deleted"
    assert allocations() == before
    assert not Port.objects.exists()
    assert not domains_on_hosts()
    assert not volumes_on_hosts()
    assert set(Node.objects.values_list("token_digest", flat=True)) == {""}
    assert client.get("/api/v1/clusters").json()["results"] == []
    assert client.delete(f"/api/v1/clusters/{created['id']}").status_code == 202  # idempotent


def test_scale_to_four_and_back(demo_cloud, alice, acme, api_for) -> None:
    client = api_for(alice, acme)
    created = launch(client)
    three = allocations()
    url = f"/api/v1/clusters/{created['id']}/pools/workers"
    assert client.patch(url, {"count": 4}, format="json").status_code == 202
    cluster = client.get(f"/api/v1/clusters/{created['id']}").json()
    assert cluster["status"] == "running"
    assert [n["status"] for n in cluster["nodes"]] == ["running"] * 4
    newest = cluster["nodes"][-1]["name"]
    assert client.patch(url, {"count": 3}, format="json").status_code == 202
    cluster = client.get(f"/api/v1/clusters/{created['id']}").json()
    assert newest not in {n["name"] for n in cluster["nodes"]}
    assert len(cluster["nodes"]) == 3
    assert allocations() == three
    assert Port.objects.count() == 3


@pytest.mark.parametrize("step", steps.NAMES)
def test_a_fault_at_any_step_fails_cleanly_and_leaks_nothing(
    demo_cloud, alice, acme, api_for, settings, step
) -> None:
    settings.CLOUD_FAULTS = f"{step}:1"
    before = allocations()
    client = api_for(alice, acme)
    created = launch(client)
    cluster = client.get(f"/api/v1/clusters/{created['id']}").json()
    assert cluster["status"] == "failed"
    assert {n["status"] for n in cluster["nodes"]} == {"failed"}
    expected = "injected_fault" if step in ("import_image", "start_vm") else f"{step}_failed"
    server = next(n for n in cluster["nodes"] if n["is_server"])
    assert server["error"]["code"] == expected
    assert {n["error"]["code"] for n in cluster["nodes"]} <= {expected, "server_failed"}
    assert allocations() == before
    assert not Port.objects.exists()
    assert not domains_on_hosts()
    assert not volumes_on_hosts()
    assert Event.objects.filter(state="failed", step=step, node=server["name"]).count() == 1


def test_retry_after_a_fault(demo_cloud, alice, acme, api_for, settings) -> None:
    settings.CLOUD_FAULTS = "fetch_deps:1"
    client = api_for(alice, acme)
    created = launch(client)
    settings.CLOUD_FAULTS = ""
    response = client.post(f"/api/v1/clusters/{created['id']}/retry")
    assert response.status_code == 202
    assert len(response.json()["retrying"]) == 3
    cluster = client.get(f"/api/v1/clusters/{created['id']}").json()
    assert cluster["status"] == "running"
    assert all(n["error"] is None for n in cluster["nodes"])


def test_a_worker_loads_a_node_with_what_its_steps_read(
    demo_cloud: Region, alice: User, acme: Organisation, api_for: Any, django_assert_num_queries
) -> None:
    created = launch(api_for(alice, acme), count=1)
    node_id = Node.objects.filter(cluster__uuid=created["id"]).values_list("pk", flat=True).get()
    port = Node.objects.select_related("port").get(pk=node_id).port
    assert port is not None
    with django_assert_num_queries(1) as seen:
        node = pipeline.load(node_id)
        assert node is not None
        # The image import reads the node's version; start_vm its host, pool size, network.
        assert node.hypervisor is not None
        assert (node.version.version, node.hypervisor.name, node.pool.size.slug) == (
            created["k3s_version"],
            created["nodes"][0]["hypervisor"],
            "small",
        )
        assert node.cluster.network.uuid and node.cluster.firewall.uuid
        # The host's network needs its address and MAC.
        assert (addresses.address_of(node), addresses.mac_of(node)) == (port.address, port.mac)
    # Nor does it load (and decrypt) the cluster's CA keys and join token.
    assert "_encrypted" not in seen.captured_queries[0]["sql"]


def test_a_cluster_that_runs_says_so_at_100_percent_under_the_one_lock(
    demo_cloud: Region, alice: User, acme: Organisation, api_for: Any
) -> None:
    """Its event needs neither a count of the steps (running: all are done) nor another
    lock of the row refresh_cluster holds."""
    cluster = Cluster.objects.get(uuid=launch(api_for(alice, acme), count=1)["id"])
    Cluster.objects.filter(pk=cluster.pk).update(status="provisioning")
    with transaction.atomic(), CaptureQueriesContext(connection) as seen:
        pipeline.refresh_cluster(cluster)
    run = [q["sql"] for q in seen.captured_queries]
    reads = [sql for sql in run if sql.startswith('SELECT "provisioning_cluster"."id"')]
    assert len(reads) == 1, run  # the lock, with the state
    assert not any("COUNT(" in sql for sql in run), run
    event = Event.objects.filter(cluster=cluster).latest("id")
    assert (event.message, event.progress) == ("Cluster running", 100)


def test_a_clusters_refresh_reads_its_state_with_its_lock(
    demo_cloud: Region, alice: User, acme: Organisation, api_for: Any
) -> None:
    """Every node that becomes Ready asks: the cluster's state read by the statement that
    locks it, then its nodes; nothing to change, nothing more."""
    cluster = Cluster.objects.get(uuid=launch(api_for(alice, acme), count=1)["id"])
    cluster.status = "provisioning"  # a caller's copy, older than the row
    with transaction.atomic(), CaptureQueriesContext(connection) as seen:
        pipeline.refresh_cluster(cluster)
    run = [q["sql"] for q in seen.captured_queries if not q["sql"].startswith(("BEGIN", "COMMIT"))]
    assert len(run) == 2, run
    assert '"status"' in run[0] and "provisioning_cluster" in run[0]
    # Of its nodes, what the cluster's state is derived from.
    assert run[1].split(" FROM ")[0].count('"provisioning_node".') == 2, run[1]
    assert cluster.status == "running"
