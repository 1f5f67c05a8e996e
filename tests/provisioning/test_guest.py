"""The guest side: the cloud-init seed, phone-home rules, redelivered tasks, the reaper."""

from datetime import timedelta
from typing import Any

import pytest
import yaml
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from networking.models import Port
from observability.models import Event
from portal.actor import Actor
from provisioning import addresses, guest_seed, services
from provisioning.drivers import get_driver, metadata_key
from provisioning.drivers.base import HypervisorDriver
from provisioning.drivers.hostnet.metadata_proxy import (
    ADDRESS_HEADER,
    NETWORK_HEADER,
    SIGNATURE_HEADER,
    signature,
)
from provisioning.models import Hypervisor, Node, NodeStep
from provisioning.states import NodeStatus
from provisioning.tasks import launch

pytestmark = pytest.mark.django_db(transaction=True)
GOOD = {
    "name": "web",
    "region": "demo",
    "pools": [{"name": "workers", "size": "small", "count": 3}],
}
PHONE_HOME = "/api/v1/guest/phone-home"


@pytest.fixture
def booted(demo_cloud, alice, acme, api_for, settings) -> list[Node]:
    """A cluster whose VMs started but whose guests have not said anything yet."""
    settings.GUEST_SIMULATOR = False
    cache.clear()
    api_for(alice, acme).post("/api/v1/clusters", GOOD, format="json")
    return list(Node.objects.order_by("-is_server", "id"))


def driver_of(node: Node) -> HypervisorDriver:
    assert node.hypervisor is not None
    return get_driver(node.hypervisor.uri)


def domain_state(node: Node) -> str | None:
    found = driver_of(node).domain_state(node.domain_name)
    return found.state if found else None


def report(node: Node, step: str, state: str, **extra: Any) -> Any:
    payload = {"token": guest_seed.node_token(node), "step": step, "state": state, **extra}
    return Client().post(PHONE_HOME, payload, content_type="application/json")


def walk(node: Node, *steps: str) -> None:
    for step in steps:
        assert report(node, step, "started").status_code == 200
        assert report(node, step, "done").status_code == 200


def test_seed_documents(booted: list[Node]) -> None:
    server, agent = booted[0], booted[1]
    client = Client()
    base = f"/guest/{guest_seed.node_token(server)}/"
    meta = client.get(base + "meta-data").content.decode()
    assert f"instance-id: {server.uuid}" in meta
    network = yaml.safe_load(client.get(base + "network-config").content)
    address = Port.objects.get(owner=str(server.uuid)).address
    assert network["ethernets"]["tenant0"]["addresses"] == [f"{address}/24"]
    with CaptureQueriesContext(connection) as seen:
        text = client.get(base + "user-data").content.decode()
    # The user-data loads the cluster's secrets with the node (not one by one, deferred);
    # the other documents do without them.
    assert sum("_encrypted" in q["sql"] for q in seen.captured_queries) == 1
    assert text.startswith("#cloud-config\n")
    document = yaml.safe_load(text)
    files = {f["path"]: f for f in document["write_files"]}
    env = files["/etc/k3s-portal/agent.env"]["content"]
    assert f"NODE_TOKEN={guest_seed.node_token(server)}" in env and "IS_SERVER=1" in env
    assert "BEGIN CERTIFICATE" in files["/var/lib/rancher/k3s/server/tls/server-ca.crt"]["content"]
    assert files["/var/lib/rancher/k3s/server/tls/client-ca.key"]["permissions"] == "0600"
    assert (
        "portal:viewer"
        in files["/var/lib/rancher/k3s/server/manifests/portal-rbac.yaml"]["content"]
    )
    assert "cloud_init" in str(document["bootcmd"])
    agent_doc = yaml.safe_load(
        client.get(f"/guest/{guest_seed.node_token(agent)}/user-data").content
    )
    agent_files = {f["path"]: f for f in agent_doc["write_files"]}
    assert not any("tls" in path for path in agent_files)
    assert (
        f"K3S_SERVER_URL=https://{address}:6443"
        in agent_files["/etc/k3s-portal/agent.env"]["content"]
    )
    assert client.get("/guest/not-a-token/user-data").status_code == 404
    assert client.get(base + "secrets").status_code == 404


def test_smbios_serial_points_cloud_init_at_the_seed(booted: list[Node]) -> None:
    node = booted[0]
    assert (
        guest_seed.smbios_serial(node)
        == f"ds=nocloud-net;s=http://169.254.169.254/guest/{guest_seed.node_token(node)}/"
    )  # the metadata proxy of the node's network: no guest needs a route to the portal
    assert node.token_digest == guest_seed.token_digest(guest_seed.node_token(node))
    assert guest_seed.node_token(node) not in str(
        list(Node.objects.values())
    )  # only its digest is stored


def proxied(node: Node, path: str, address: str = "", key: str = "") -> dict[str, str]:
    """The headers the metadata proxy of `node`'s network adds for a guest at `address`
    (the node's own by default) asking for `path`."""
    network = str(node.cluster.network.uuid)
    asking = address or addresses.address_of(node) or ""
    return {
        NETWORK_HEADER: network,
        ADDRESS_HEADER: asking,
        SIGNATURE_HEADER: signature(key or metadata_key(), network, asking, path),
    }


def test_through_the_metadata_proxy_a_seed_opens_only_for_its_own_node(
    booted: list[Node],
) -> None:
    server, agent = booted[0], booted[1]
    agent_address = addresses.address_of(agent) or ""
    client = Client()
    own = f"/guest/{guest_seed.node_token(server)}/user-data"
    assert client.get(own, headers=proxied(server, own)).status_code == 200
    # The agent's guest holding the server's token (the one with the CA keys): refused.
    assert client.get(own, headers=proxied(server, own, agent_address)).status_code == 404
    # A forged signature, or one made with another key, is refused too.
    assert client.get(own, headers=proxied(server, own, key="guessed")).status_code == 404
    bad_network = {NETWORK_HEADER: "not-a-uuid", ADDRESS_HEADER: agent_address}
    assert client.get(own, headers=bad_network).status_code == 404

    # Reports follow the same rule.
    payload = {"token": guest_seed.node_token(server), "step": "cloud_init", "state": "started"}

    def post(headers: dict[str, str]) -> int:
        return client.post(
            PHONE_HOME, payload, content_type="application/json", headers=headers
        ).status_code

    assert post(proxied(server, PHONE_HOME, agent_address)) == 404
    assert post(proxied(server, PHONE_HOME)) == 200


def test_a_live_node_keeps_its_token_across_a_secret_key_rotation(
    booted: list[Node], settings: Any
) -> None:
    server = booted[0]
    token = guest_seed.node_token(server)
    serial = guest_seed.smbios_serial(server)
    proxy_key = metadata_key()
    own = f"/guest/{token}/user-data"
    client = Client()
    old = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "rotated-" + "k" * 50, [old]
    # Re-derived under the old key (a reconciled domain gets the same serial)...
    assert guest_seed.node_token(server) == token
    assert guest_seed.smbios_serial(server) == serial
    # ...and a proxy started before the rotation still signs acceptably.
    assert client.get(own, headers=proxied(server, own, key=proxy_key)).status_code == 200
    settings.SECRET_KEY_FALLBACKS = []  # the old key is gone for good
    assert client.get(own, headers=proxied(server, own, key=proxy_key)).status_code == 404
    # The token itself is only ever compared by digest: the seed still opens, and hands the
    # agent the token it was fetched with, so its reports keep being accepted.
    seed = client.get(own)
    assert seed.status_code == 200
    assert f"NODE_TOKEN={token}" in seed.content.decode()
    assert report(server, "cloud_init", "started").status_code == 404  # re-derived: new key
    payload = {"token": token, "step": "cloud_init", "state": "started"}
    assert client.post(PHONE_HOME, payload, content_type="application/json").status_code == 200


def test_the_seeds_secrets_are_gone_once_the_node_is_provisioned(booted: list[Node]) -> None:
    server = booted[0]
    base = f"/guest/{guest_seed.node_token(server)}/"
    client = Client()
    assert client.get(base + "user-data").status_code == 200
    walk(server, "cloud_init", "fetch_deps", "launch_k3s")
    assert Node.objects.get(pk=server.pk).status == NodeStatus.RUNNING
    gone = client.get(base + "user-data")
    assert gone.status_code == 410 and b"BEGIN" not in gone.content
    assert client.get(base + "meta-data").status_code == 200  # no secret in it


def test_steps_must_come_in_order_and_agents_wait_for_the_server(booted: list[Node]) -> None:
    server, agent = booted[0], booted[1]
    assert report(server, "fetch_deps", "started").status_code == 400
    assert report(server, "cloud_init", "done").status_code == 400  # not started yet
    assert report(server, "import_image", "started").status_code == 400  # not a guest step
    assert report(server, "cloud_init", "sideways").status_code == 400
    walk(agent, "cloud_init", "fetch_deps")
    assert report(agent, "launch_k3s", "started").status_code == 409  # the server is not Ready
    walk(server, "cloud_init", "fetch_deps", "launch_k3s")
    assert Node.objects.get(pk=server.pk).status == NodeStatus.RUNNING
    walk(agent, "launch_k3s")
    walk(booted[2], "cloud_init", "fetch_deps", "launch_k3s")
    assert set(Node.objects.values_list("status", flat=True)) == {"running"}
    assert server.cluster.__class__.objects.get(pk=server.cluster_id).status == "running"


def test_repeated_reports_change_nothing(booted: list[Node]) -> None:
    server = booted[0]
    assert report(server, "cloud_init", "started").status_code == 200
    count = Event.objects.count()
    assert report(server, "cloud_init", "started").status_code == 200
    assert Event.objects.count() == count


def test_a_guest_failure_fails_the_node_and_releases_it(booted: list[Node]) -> None:
    agent = booted[1]
    walk(booted[0], "cloud_init", "fetch_deps", "launch_k3s")
    assert report(agent, "cloud_init", "started").status_code == 200
    assert (
        report(agent, "cloud_init", "failed", message="no route to the portal").status_code == 200
    )
    agent.refresh_from_db()
    assert (agent.status, agent.error_code) == ("failed", "cloud_init_failed")
    assert agent.error_message == "no route to the portal"
    assert not Port.objects.filter(owner=str(agent.uuid)).exists()
    assert agent.claimed_vcpus == 0
    assert domain_state(agent) is None
    assert report(agent, "cloud_init", "done").status_code == 400  # a failed node says no more
    walk(booted[2], "cloud_init", "fetch_deps", "launch_k3s")
    assert agent.cluster.__class__.objects.get(pk=agent.cluster_id).status == "degraded"


def test_unknown_or_revoked_token_is_404(booted: list[Node]) -> None:
    response = Client().post(
        PHONE_HOME,
        {"token": "nope", "step": "cloud_init", "state": "started"},
        content_type="application/json",
    )
    assert response.status_code == 404
    Node.objects.filter(pk=booted[0].pk).update(token_digest="")
    assert report(booted[0], "cloud_init", "started").status_code == 404


def test_phone_home_is_rate_limited(booted: list[Node]) -> None:
    node = booted[0]
    codes = [report(node, "cloud_init", "started").status_code for _ in range(125)]
    assert codes[:120] == [200] * 120
    assert codes[-1] == 429


def test_redelivered_driver_steps_converge(booted: list[Node]) -> None:
    node = booted[0]
    events = Event.objects.count()
    launch.run_step.apply(args=(node.pk, "import_image"))  # as if the broker delivered it again
    launch.run_step.apply(args=(node.pk, "start_vm"))
    assert Event.objects.count() == events
    assert NodeStep.objects.filter(node=node, finished_at__isnull=False).count() == 2
    assert domain_state(node) == "running"
    assert [d.name for d in driver_of(node).list_domains(node.domain_name)] == [node.domain_name]


def test_worker_killed_mid_step_resumes_when_redelivered(
    demo_cloud, alice, acme, api_for, settings, monkeypatch
) -> None:
    settings.GUEST_SIMULATOR = False
    # The worker dies right after taking the launch: nothing of it runs here...
    monkeypatch.setattr(launch.launch_cluster, "apply_async", lambda *a, **k: None)
    api_for(alice, acme).post("/api/v1/clusters", GOOD, format="json")
    node = Node.objects.get(is_server=True)
    # ...except the start of import_image, before the task was acknowledged.
    Node.objects.filter(pk=node.pk).update(status="provisioning")
    NodeStep.objects.filter(node=node, step="import_image").update(started_at=timezone.now())
    launch.run_step.apply(args=(node.pk, "import_image"))  # acks_late: the broker redelivers it
    assert NodeStep.objects.get(node=node, step="start_vm").finished_at is not None
    assert Event.objects.filter(node=node.name, step="import_image", state="started").count() == 0
    assert Event.objects.filter(node=node.name, step="import_image", state="done").count() == 1
    assert domain_state(node) == "running"


def stall(settings) -> None:
    """Every node and its steps last moved a step's timeout ago and more."""
    # Their VMs started then too: the earlier silent-guest check is not what this tests.
    settings.GUEST_BOOT_DEADLINE_SECONDS = settings.STEP_TIMEOUT_SECONDS * 2
    long_ago = timezone.now() - timedelta(seconds=settings.STEP_TIMEOUT_SECONDS + 1)
    Node.objects.update(progressed_at=long_ago)
    NodeStep.objects.filter(started_at__isnull=False).update(started_at=long_ago)
    NodeStep.objects.filter(finished_at__isnull=False).update(finished_at=long_ago)


def test_reaper_fails_stalled_nodes_and_gives_everything_back(booted: list[Node], settings) -> None:
    before = {h.pk: h.vcpus_allocated for h in Hypervisor.objects.all()}
    stall(settings)
    assert launch.reap_stalled.apply().get() == 3
    assert set(Node.objects.values_list("error_code", flat=True)) <= {
        "step_timeout",
        "server_failed",
    }
    server = Node.objects.get(is_server=True)
    assert server.error_code == "step_timeout"
    assert server.error_message.endswith("during Start VM."), server.error_message
    assert not Port.objects.exists()
    assert all(h.vcpus_allocated == 0 for h in Hypervisor.objects.all())
    assert any(before.values())
    for node in booted:
        assert domain_state(node) is None
        assert not driver_of(node).volume_exists("default", node.volume_name)


def test_a_step_moved_lately_is_progress_to_the_reaper(booted: list[Node], settings) -> None:
    # The nodes' status changed long ago, but their steps moved just now.
    Node.objects.update(
        progressed_at=timezone.now() - timedelta(seconds=settings.STEP_TIMEOUT_SECONDS + 1)
    )
    assert launch.reap_stalled.apply().get() == 0
    assert set(Node.objects.values_list("status", flat=True)) == {"provisioning"}


def test_broker_down_at_commit_is_no_500_and_the_reaper_cleans_up(
    demo_cloud, alice, acme, api_for, settings, monkeypatch
) -> None:
    from kombu.exceptions import OperationalError

    def broker_down(*args: object, **kwargs: object) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(launch.launch_cluster, "apply_async", broker_down)
    response = api_for(alice, acme).post("/api/v1/clusters", GOOD, format="json")
    assert response.status_code == 202
    assert set(Node.objects.values_list("status", flat=True)) == {"pending"}
    stall(settings)
    launch.reap_stalled.apply()
    assert set(Node.objects.values_list("status", flat=True)) == {"failed"}
    assert not Port.objects.exists()
    assert all(h.vcpus_allocated == 0 for h in Hypervisor.objects.all())


def test_a_lost_deletion_is_driven_again_by_the_reaper(
    booted: list[Node], settings, monkeypatch
) -> None:
    cluster = booted[0].cluster
    real_send = launch.delete_node.apply_async
    monkeypatch.setattr(launch.delete_node, "apply_async", lambda *a, **k: None)  # lost
    assert cluster.created_by is not None
    services.delete_cluster(Actor(user=cluster.created_by), cluster)
    assert set(Node.objects.values_list("status", flat=True)) == {"deleting"}
    monkeypatch.setattr(launch.delete_node, "apply_async", real_send)
    stall(settings)
    launch.reap_stalled.apply()
    assert set(Node.objects.values_list("status", flat=True)) == {"deleted"}
    assert cluster.__class__.objects.get(pk=cluster.pk).status == "deleted"
    for node in booted:
        assert domain_state(node) is None
