"""Host agents: host tasks routed to host.<name>, the agent's heartbeat, placement skipping a
silent agent's host, the host_agent command, and staff setting a host's virtualisation."""

import os
from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from cloud.celery import app
from portal.models import AuditEntry, Organisation
from provisioning import placement, queues
from provisioning.management.commands import host_agent
from provisioning.models import Hypervisor, NodeSize, Region
from provisioning.tasks import inventory as inventory_tasks
from tests import second_factor
from tests.provisioning import inventory_fixtures
from tests.provisioning.conftest import MakeSizedHost
from tests.provisioning.factories import make_cluster_node

region = inventory_fixtures.region
make_host = inventory_fixtures.make_host

pytestmark = pytest.mark.django_db

HOST_TASKS_BY_NODE = [
    "provisioning.run_step",
    "provisioning.release_node",
    "provisioning.delete_node",
    "provisioning.report_silent_guest",
]
HOST_TASKS_BY_HOST = [
    "provisioning.sync_hypervisor",
    "provisioning.reconcile_hypervisor",
    "provisioning.agent_ping",
]
CENTRAL_TASKS = [
    "provisioning.launch_cluster",
    "provisioning.reap_stalled",
    "provisioning.reconcile",
    "provisioning.simulate_guest",
    "provisioning.ping_agents",
    "provisioning.sync_inventory",
]


def queue_of(name: str, *args: Any) -> str:
    """The queue Celery's own router (the app's task_routes) gives a message."""
    return app.amqp.router.route({}, name, args, {})["queue"].name


@pytest.fixture
def host_queues(settings: Any) -> None:
    settings.HOST_QUEUES = True


def test_host_tasks_go_to_their_hosts_queue(
    host_queues: None, region: Region, sized_host: MakeSizedHost, small: NodeSize
) -> None:
    host = sized_host("hv-7", 8, 16384, region)
    node = make_cluster_node(host, small)
    for name in HOST_TASKS_BY_NODE:
        assert queue_of(name, node.pk, "import_image") == "host.hv-7", name
    for name in HOST_TASKS_BY_HOST:
        assert queue_of(name, host.pk) == "host.hv-7", name


def test_central_tasks_stay_on_the_default_queue(
    host_queues: None, region: Region, sized_host: MakeSizedHost, small: NodeSize
) -> None:
    node = make_cluster_node(sized_host("hv-7", 8, 16384, region), small)
    for name in CENTRAL_TASKS:
        assert queue_of(name, node.pk) == queues.DEFAULT, name
    # A node or host that is gone has no queue but the default one.
    assert queue_of("provisioning.run_step", 999_999, "start_vm") == queues.DEFAULT


def test_embedded_mode_keeps_everything_on_the_default_queue(
    settings: Any, region: Region, sized_host: MakeSizedHost, small: NodeSize
) -> None:
    settings.HOST_QUEUES = False
    host = sized_host("hv-7", 8, 16384, region)
    node = make_cluster_node(host, small)
    assert queue_of("provisioning.run_step", node.pk, "start_vm") == queues.DEFAULT
    assert queue_of("provisioning.sync_hypervisor", host.pk) == queues.DEFAULT


@pytest.mark.parametrize("host_queues", [False, True])
def test_the_simulators_tasks_go_to_its_queue_when_it_has_one(
    settings: Any, host_queues: bool, region: Region, sized_host: MakeSizedHost, small: NodeSize
) -> None:
    settings.HOST_QUEUES = host_queues
    node = make_cluster_node(sized_host("hv-7", 8, 16384, region), small)
    simulator = ("provisioning.simulate_guest", "provisioning.simulate_heartbeats")
    for name in simulator:
        assert queue_of(name, node.pk, 0) == queues.DEFAULT, name  # as any central task
    settings.GUEST_SIM_QUEUE = "guests"
    for name in simulator:
        assert queue_of(name, node.pk, 0) == "guests", name
    assert queue_of("provisioning.launch_cluster", node.cluster_id) == queues.DEFAULT


def test_the_ping_stamps_every_hosts_agent(region: Region, sized_host: MakeSizedHost) -> None:
    hosts = [sized_host(name, 8, 16384, region) for name in ("a", "b")]
    before = timezone.now()
    inventory_tasks.ping_agents()  # eager: each agent_ping runs as its agent would
    for host in hosts:
        host.refresh_from_db()
        assert host.agent_seen_at is not None and host.agent_seen_at >= before


def test_a_silent_agents_host_gets_no_new_nodes(
    host_queues: None, settings: Any, region: Region, sized_host: MakeSizedHost, small: NodeSize
) -> None:
    settings.AGENT_SILENT_SECONDS = 60
    now = timezone.now()
    sized_host("alive", 8, 16384, region, agent_seen_at=now)
    sized_host("silent", 64, 262144, region, agent_seen_at=now - timedelta(seconds=61))
    sized_host("never", 64, 262144, region)

    plan = placement.plan(region, [small] * 3)

    assert set(plan.names.values()) == {"alive"}
    verdicts = {v.host: v.reason for v in placement.explain(region, small)}
    assert verdicts["silent"] == verdicts["never"] == "rejected: its host agent is silent"
    assert not verdicts["alive"].startswith("rejected")


def test_embedded_mode_does_not_wait_for_agents(
    settings: Any, region: Region, sized_host: MakeSizedHost, small: NodeSize
) -> None:
    settings.HOST_QUEUES = False
    sized_host("never", 8, 16384, region)
    assert placement.plan(region, [small]).host_count == 1


def test_host_agent_execs_a_worker_on_the_hosts_queue(
    monkeypatch: pytest.MonkeyPatch, settings: Any, region: Region, sized_host: MakeSizedHost
) -> None:
    settings.HOST_QUEUES = True
    host = sized_host("hv-7", 8, 16384, region)
    Hypervisor.objects.filter(pk=host.pk).update(uri="qemu+ssh://root@hv-7/system")
    execs: list[list[str]] = []
    monkeypatch.setattr(host_agent.os, "execv", lambda _path, argv: execs.append(argv))
    monkeypatch.delenv("HOST_AGENT_URI", raising=False)
    monkeypatch.delenv("HOST_AGENT_STORED_URI", raising=False)

    out = StringIO()
    call_command("host_agent", "hv-7", "--uri", "qemu:///system", stdout=out)

    [argv] = execs
    assert argv[argv.index("--queues") + 1] == "host.hv-7"
    assert argv[argv.index("--hostname") + 1] == "agent-hv-7@%h"
    assert argv[argv.index("--concurrency") + 1] == "1"
    assert "--beat" not in argv  # beat runs once, with the central worker
    # The worker opens the stored URI as the local one (cloud/settings LIBVIRT_URI_ALIASES).
    assert os.environ["HOST_AGENT_STORED_URI"] == "qemu+ssh://root@hv-7/system"
    assert os.environ["HOST_AGENT_URI"] == "qemu:///system"
    assert "queue host.hv-7, libvirt qemu:///system" in out.getvalue()


def test_host_agent_of_an_unknown_host_fails(db: None) -> None:
    with pytest.raises(CommandError, match="No hypervisor 'nope'"):
        call_command("host_agent", "nope")


# --- add_hypervisor's virtualisation flags -------------------------------------------------


def test_add_hypervisor_stores_the_virtualisation(region: Region, tmp_path: Any) -> None:
    call_command(
        "add_hypervisor", "hv-q", "test:///default", "--region", "lon1",
        "--virt-type", "qemu", "--cpu-mode", "custom", "--cpu-model", "qemu64",
        "--machine-type", "q35", stdout=StringIO(),
    )  # fmt: skip
    host = Hypervisor.objects.get(name="hv-q")
    assert (host.virt_type, host.cpu_mode, host.cpu_model, host.machine_type) == (
        "qemu",
        "custom",
        "qemu64",
        "q35",
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--cpu-mode", "custom"], "cpu_model"),
        (["--cpu-model", "qemu64"], "cpu_model"),
        (["--machine-type", "pc q35"], "machine_type"),
        (["--virt-type", "xen"], "invalid choice: 'xen'"),
        (["--cpu-mode", "max"], "invalid choice: 'max'"),
    ],
)
def test_add_hypervisor_rejects_bad_virtualisation(
    region: Region, flags: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        call_command(
            "add_hypervisor", "hv-q", "test:///default", "--region", "lon1", *flags,
            stdout=StringIO(),
        )  # fmt: skip
    assert not Hypervisor.objects.filter(name="hv-q").exists()


# --- PATCH /api/v1/staff/hypervisors/<name> ------------------------------------------------

DETAIL = "/api/v1/staff/hypervisors/hv-a"


@pytest.fixture
def staff_api(staff: User) -> APIClient:
    client = APIClient()
    client.force_login(staff)
    return client


@pytest.fixture
def host(region: Region, sized_host: MakeSizedHost) -> Hypervisor:
    return sized_host("hv-a", 8, 16384, region)


def test_staff_patch_sets_the_virtualisation_and_is_audited(
    staff_api: APIClient, host: Hypervisor
) -> None:
    body = {"virt_type": "qemu", "cpu_mode": "custom", "cpu_model": "qemu64", "machine_type": "q35"}
    response = staff_api.patch(DETAIL, body, format="json")

    assert response.status_code == 200, response.content
    data = response.json()
    assert {k: data[k] for k in body} == body
    assert data["virtualisation"] == body
    host.refresh_from_db()
    assert (host.virt_type, host.cpu_mode, host.cpu_model, host.machine_type) == tuple(
        body.values()
    )
    entry = AuditEntry.objects.get(action="hypervisor.virtualisation")
    assert entry.target_id == str(host.uuid)
    assert entry.actor is not None and entry.actor.username == "staff"
    assert entry.details["changes"]["cpu_mode"] == {"from": "", "to": "custom"}

    # Leaving custom drops the model; blank goes back to auto-detection.
    response = staff_api.patch(DETAIL, {"cpu_mode": "none", "virt_type": ""}, format="json")
    assert response.status_code == 200
    host.refresh_from_db()
    assert (host.virt_type, host.cpu_mode, host.cpu_model) == ("", "none", "")
    assert staff_api.get(DETAIL).json()["virtualisation"]["cpu_mode"] == "none"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"virt_type": "xen"}, "virt_type"),
        ({"cpu_mode": "max"}, "cpu_mode"),
        ({"cpu_mode": "custom"}, "cpu_model"),
        ({"cpu_model": "qemu64"}, "cpu_model"),
        ({"machine_type": "q35; rm"}, "machine_type"),
        ({"name": "renamed"}, "name"),
    ],
)
def test_staff_patch_names_the_bad_field(
    staff_api: APIClient, host: Hypervisor, body: dict[str, str], field: str
) -> None:
    response = staff_api.patch(DETAIL, body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert Hypervisor.objects.get(pk=host.pk).cpu_mode == ""
    assert not AuditEntry.objects.filter(action="hypervisor.virtualisation").exists()


def test_patch_is_hidden_from_non_staff(
    host: Hypervisor,
    alice: User,
    acme: Organisation,
    api_for: Callable[[User, Organisation], APIClient],
) -> None:
    client = api_for(alice, acme)
    assert client.patch(DETAIL, {"virt_type": "qemu"}, format="json").status_code == 404
    assert client.get(DETAIL).status_code == 404
    assert APIClient().patch(DETAIL, {"virt_type": "qemu"}, format="json").status_code == 401
    assert Hypervisor.objects.get(pk=host.pk).virt_type == ""


def test_unknown_host_is_404(staff_api: APIClient, db: None) -> None:
    assert staff_api.patch("/api/v1/staff/hypervisors/nope", {}, format="json").status_code == 404


def test_staff_page_shows_virtualisation_and_agent_heartbeat(
    staff: User, region: Region, sized_host: MakeSizedHost
) -> None:
    sized_host("seen", 8, 16384, region, agent_seen_at=timezone.now(), virt_type="qemu")
    sized_host("unseen", 8, 16384, region)
    Hypervisor.objects.filter(name__in=["seen", "unseen"]).update(uri="qemu+ssh://h/system")
    sized_host("zz-test", 8, 16384, region)  # libvirt's test driver: no virtualisation
    client = second_factor.verified(Client(), staff)

    page = client.get("/staff/hypervisors/").content.decode()

    seen = page[page.index('id="hypervisor-seen"') : page.index('id="hypervisor-unseen"')]
    unseen = page[page.index('id="hypervisor-unseen"') : page.index('id="hypervisor-zz-test"')]
    assert "libvirt test driver" in page[page.index('id="hypervisor-zz-test"') :]
    assert "<code>qemu</code>, CPU <code>none</code>" in seen and "ago)" in seen
    assert "<code>kvm</code>, CPU <code>host-model</code>" in unseen
    assert "not detected yet" in unseen and "never seen" in unseen
