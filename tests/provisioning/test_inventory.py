"""Inventory sync against libvirt's test driver: totals, domain count, offline detection."""

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from portal.models import AuditEntry
from provisioning import inventory
from provisioning.drivers import get_driver
from provisioning.drivers.base import DomainSpec
from provisioning.models import Hypervisor, HypervisorState, Region
from provisioning.tasks import inventory as inventory_tasks
from tests.portal.at_rest import stored
from tests.provisioning import inventory_fixtures
from tests.provisioning.inventory_fixtures import UNREACHABLE_URI, MakeHost

# Fixtures, used by name.
region = inventory_fixtures.region
make_host = inventory_fixtures.make_host

pytestmark = pytest.mark.django_db


def define_domain(uri: str, name: str) -> None:
    get_driver(uri).ensure_domain(
        DomainSpec(
            name=name,
            vcpus=1,
            memory_mib=512,
            disk_pool="default",
            disk_volume=f"{name}.qcow2",
            nics=(),
            smbios_serial="ds=nocloud-net;s=http://portal.test/guest/t/",
        )
    )


def fresh(host: Hypervisor) -> Hypervisor:
    return Hypervisor.objects.get(pk=host.pk)


def test_sync_stores_totals_and_counts_only_portal_domains(make_host: MakeHost) -> None:
    host = make_host("hv-a", vcpus=12, memory_mib=32768, vcpus_allocated=5)
    define_domain(host.uri, "k3s-0123abcd-pool-0")
    define_domain(host.uri, "k3s-0123abcd-pool-1")
    define_domain(host.uri, "someone-elses-vm")

    inventory.sync_hypervisor(host.pk)

    host = fresh(host)
    assert (host.vcpus_total, host.memory_mib_total, host.domain_count) == (12, 32768, 2)
    assert host.synced_at is not None
    assert host.vcpus_capacity == 48
    assert host.vcpus_allocated == 5  # the portal's claims are not libvirt's business


def test_three_failed_syncs_take_an_active_host_offline(make_host: MakeHost) -> None:
    host = make_host("hv-a")
    good_uri = host.uri
    inventory.sync_hypervisor(host.pk)
    Hypervisor.objects.filter(pk=host.pk).update(uri=UNREACHABLE_URI)

    for expected_failures in (1, 2):
        inventory.sync_hypervisor(host.pk)
        host = fresh(host)
        assert host.sync_failures == expected_failures
        assert host.state == HypervisorState.ACTIVE
    assert host.last_error.startswith("unreachable:")
    assert host.vcpus_total == 8  # the last known facts stay

    inventory.sync_hypervisor(host.pk)
    assert fresh(host).state == HypervisorState.OFFLINE

    Hypervisor.objects.filter(pk=host.pk).update(uri=good_uri)
    inventory.sync_hypervisor(host.pk)
    host = fresh(host)
    assert (host.state, host.sync_failures, host.last_error) == (HypervisorState.ACTIVE, 0, "")


@pytest.mark.parametrize("state", [HypervisorState.CORDONED, HypervisorState.MAINTENANCE])
def test_staff_chosen_states_survive_failures_and_recovery(make_host: MakeHost, state: str) -> None:
    host = make_host("hv-a", state=state)
    good_uri = host.uri
    Hypervisor.objects.filter(pk=host.pk).update(uri=UNREACHABLE_URI)
    for _ in range(4):
        inventory.sync_hypervisor(host.pk)
    assert (fresh(host).state, fresh(host).sync_failures) == (state, 4)

    Hypervisor.objects.filter(pk=host.pk).update(uri=good_uri)
    inventory.sync_hypervisor(host.pk)
    assert (fresh(host).state, fresh(host).sync_failures) == (state, 0)


def test_failure_counter_is_capped(make_host: MakeHost) -> None:
    host = make_host("hv-a")
    Hypervisor.objects.filter(pk=host.pk).update(
        uri=UNREACHABLE_URI, sync_failures=inventory.MAX_COUNTED_FAILURES
    )
    inventory.sync_hypervisor(host.pk)
    assert fresh(host).sync_failures == inventory.MAX_COUNTED_FAILURES


def test_sync_of_a_deleted_host_is_a_no_op() -> None:
    inventory.sync_hypervisor(999_999)


def test_periodic_task_syncs_every_host(make_host: MakeHost) -> None:
    hosts = [make_host("hv-a", vcpus=4), make_host("hv-b", vcpus=6)]
    inventory_tasks.sync_inventory.delay()
    assert [fresh(h).vcpus_total for h in hosts] == [4, 6]


def test_sync_hypervisor_task(make_host: MakeHost) -> None:
    host = make_host("hv-a", vcpus=3)
    inventory_tasks.sync_hypervisor.delay(host.pk)
    assert fresh(host).vcpus_total == 3
    assert inventory_tasks.sync_hypervisor.acks_late


def test_add_hypervisor_encrypts_credentials_and_syncs(
    make_host: MakeHost, tmp_path: Path, region: Region
) -> None:
    template = make_host("template", vcpus=10, memory_mib=20480)
    key = tmp_path / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-material\n")
    out = io.StringIO()

    call_command(
        "add_hypervisor",
        "hv-new",
        template.uri,
        "--region",
        region.slug,
        "--cpu-overcommit",
        "2",
        "--credentials-file",
        str(key),
        stdout=out,
    )

    host = Hypervisor.objects.get(name="hv-new")
    assert (host.vcpus_total, host.vcpus_capacity, host.memory_mib_total) == (10, 20, 20480)
    assert "secret-material" not in stored(host, "credentials")
    assert host.credentials == key.read_text()
    assert "hv-new" in out.getvalue()
    assert AuditEntry.objects.filter(action="hypervisor.create", target_id=str(host.uuid)).exists()


def test_add_hypervisor_rejects_bad_input(make_host: MakeHost, region: Region) -> None:
    make_host("hv-a")
    with pytest.raises(CommandError, match="No region 'nowhere'"):
        call_command("add_hypervisor", "hv-b", "test:///default", "--region", "nowhere")
    with pytest.raises(CommandError, match="name"):
        call_command("add_hypervisor", "hv-a", "test:///default", "--region", region.slug)
    with pytest.raises(CommandError, match="overcommit"):
        call_command(
            "add_hypervisor",
            "hv-c",
            "test:///default",
            "--region",
            region.slug,
            "--cpu-overcommit",
            "0",
        )
    assert Hypervisor.objects.count() == 1


def test_sync_hypervisors_command_prints_the_inventory(make_host: MakeHost) -> None:
    make_host("hv-a", vcpus=4)
    down = make_host("hv-b")
    Hypervisor.objects.filter(pk=down.pk).update(uri=UNREACHABLE_URI)
    out = io.StringIO()

    call_command("sync_hypervisors", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].split()[:3] == ["NAME", "REGION", "STATE"]
    assert lines[1].split()[:4] == ["hv-a", "lon1", "active", "0/16"]
    assert lines[2].split()[:2] == ["hv-b", "lon1"] and "unreachable" in lines[2]
