"""A guest that never phones home after its VM started fails at cloud_init with
`guest_unreachable` once GUEST_BOOT_DEADLINE_SECONDS passed, before the step timeout, with
its console's last lines on the node (the test driver honestly has none), shown by the API
and the cluster page; everything it held is given back."""

from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone

from networking.models import Port
from provisioning import guest_seed
from provisioning.drivers.libvirt import LibvirtDriver
from provisioning.models import Cluster, Hypervisor, Node, NodeStep
from provisioning.tasks import launch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]
GOOD = {"name": "quiet", "region": "demo", "pools": [{"name": "w", "size": "small", "count": 2}]}
NO_CONSOLE = "no console log: libvirt's test driver runs no guest"


@pytest.fixture
def started(demo_cloud, alice, acme, api_for, settings) -> Cluster:
    """A cluster whose VMs started and whose guests say nothing (no simulator)."""
    settings.GUEST_SIMULATOR = False
    cache.clear()
    assert api_for(alice, acme).post("/api/v1/clusters", GOOD, format="json").status_code == 202
    assert NodeStep.objects.filter(step="start_vm", finished_at__isnull=False).count() == 2
    return Cluster.objects.get()


def vm_started_ago(seconds: float) -> None:
    NodeStep.objects.filter(step="start_vm").update(
        finished_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_within_the_deadline_nothing_happens(started: Cluster, settings) -> None:
    vm_started_ago(settings.GUEST_BOOT_DEADLINE_SECONDS - 5)
    launch.reap_stalled.apply()
    assert set(Node.objects.values_list("status", flat=True)) == {"provisioning"}


def test_a_guest_that_reported_is_not_silent(started: Cluster, settings, client) -> None:
    server = Node.objects.get(is_server=True)
    reply = client.post(
        "/api/v1/guest/phone-home",
        {"token": guest_seed.node_token(server), "step": "cloud_init", "state": "started"},
        content_type="application/json",
    )
    assert reply.status_code in (200, 202, 204), reply.content
    vm_started_ago(settings.GUEST_BOOT_DEADLINE_SECONDS + 1)
    launch.reap_stalled.apply()
    assert Node.objects.get(pk=server.pk).status == "provisioning"


def test_past_the_deadline_the_node_fails_at_cloud_init_with_its_console(
    started: Cluster, settings, alice, acme, api_for, browser_for: Any
) -> None:
    settings.STEP_TIMEOUT_SECONDS = 300  # later than the deadline: this check comes first
    vm_started_ago(settings.GUEST_BOOT_DEADLINE_SECONDS + 1)
    launch.reap_stalled.apply()
    server = Node.objects.with_step().get(is_server=True)
    assert server.status == "failed"
    assert server.error_code == "guest_unreachable"
    assert str(settings.GUEST_BOOT_DEADLINE_SECONDS) in server.error_message
    assert server.step == "cloud_init"
    assert server.console_tail == NO_CONSOLE
    assert NodeStep.objects.get(node=server, step="cloud_init").failed
    # Its agent follows its server; what both held is given back.
    assert set(Node.objects.values_list("status", flat=True)) == {"failed"}
    assert not Port.objects.exists()
    assert all(h.vcpus_allocated == 0 for h in Hypervisor.objects.all())

    body = api_for(alice, acme).get(f"/api/v1/clusters/{started.uuid}").json()
    errors = {n["name"]: n["error"] for n in body["nodes"]}
    assert errors[server.name] == {
        "code": "guest_unreachable",
        "message": server.error_message,
        "console_tail": NO_CONSOLE,
    }
    page = browser_for(alice).get(f"/clusters/{started.uuid}/").content.decode()
    assert (
        "<summary>Console's last lines</summary>"
        "<pre>no console log: libvirt&#x27;s test driver runs no guest</pre>"
    ) in page

    launch.reap_stalled.apply()  # nothing twice
    assert Node.objects.get(pk=server.pk).error_code == "guest_unreachable"


def test_the_worker_task_does_nothing_once_the_guest_spoke(started: Cluster, settings) -> None:
    server = Node.objects.get(is_server=True)
    vm_started_ago(settings.GUEST_BOOT_DEADLINE_SECONDS + 1)
    NodeStep.objects.filter(node=server, step="cloud_init").update(started_at=timezone.now())
    launch.report_silent_guest.apply(args=(server.pk,))  # queued before the guest spoke
    assert Node.objects.get(pk=server.pk).status == "provisioning"
    assert Node.objects.get(pk=server.pk).console_tail == ""


def test_the_console_tail_never_shows_the_node_token(
    started: Cluster, settings, monkeypatch
) -> None:
    """The token opens the seed (join token, CA keys); a console that printed the seed URL
    must not hand it to whoever can read the node's error."""
    server = Node.objects.get(is_server=True)
    leaked = f"fetching {guest_seed.seed_url(server)}user-data\nlogin:"
    monkeypatch.setattr(LibvirtDriver, "console_tail", lambda self, name, lines: leaked)
    vm_started_ago(settings.GUEST_BOOT_DEADLINE_SECONDS + 1)
    launch.reap_stalled.apply()
    server.refresh_from_db()
    assert server.error_code == "guest_unreachable"
    assert guest_seed.node_token(server) not in server.console_tail
    assert "/guest/<node token>/user-data" in server.console_tail
