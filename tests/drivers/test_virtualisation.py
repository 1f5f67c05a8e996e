"""Per-host virtualisation: what a host's domains get, and the sync filling blanks from the
host's own domcapabilities (KVM only where libvirt reports it usable, else TCG)."""

import pytest

from provisioning import inventory
from provisioning.drivers import get_driver
from provisioning.drivers.base import DriverError, Virtualisation
from provisioning.drivers.libvirt import LibvirtDriver
from provisioning.models import Hypervisor, Region
from tests.provisioning import inventory_fixtures
from tests.provisioning.inventory_fixtures import MakeHost

region = inventory_fixtures.region
make_host = inventory_fixtures.make_host

pytestmark = pytest.mark.django_db

SYSTEM_URI = "qemu:///system"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, Virtualisation("kvm", "host-model")),
        ({"virt_type": "qemu"}, Virtualisation("qemu", "none")),
        (
            {"virt_type": "kvm", "cpu_mode": "host-passthrough"},
            Virtualisation("kvm", "host-passthrough"),
        ),
        (
            {
                "virt_type": "qemu",
                "cpu_mode": "custom",
                "cpu_model": "qemu64",
                "machine_type": "q35",
            },
            Virtualisation("qemu", "custom", "qemu64", "q35"),
        ),
    ],
)
def test_a_hosts_domains_get_its_settings_blanks_filled(
    region: Region, fields: dict[str, str], expected: Virtualisation
) -> None:
    host = Hypervisor(name="hv", region=region, uri="test:///default", **fields)
    assert host.virtualisation == expected


def test_the_test_driver_reports_its_own_type_and_nothing_is_stored(make_host: MakeHost) -> None:
    host = make_host("hv-a")
    assert get_driver(host.uri).virtualisation_defaults() == Virtualisation("test", "none")
    inventory.sync_hypervisor(host.pk)
    host.refresh_from_db()
    assert host.synced_at is not None
    assert (host.virt_type, host.cpu_mode, host.machine_type) == ("", "", "")


def test_sync_fills_only_blanks_from_what_the_host_offers(
    make_host: MakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The host as a KVM machine would describe itself (libvirt's test driver cannot).
    offered = Virtualisation("kvm", "host-model")
    monkeypatch.setattr(LibvirtDriver, "virtualisation_defaults", lambda self: offered)
    blank = make_host("blank")
    chosen = make_host("chosen", virt_type="qemu", cpu_mode="custom", cpu_model="qemu64")
    mode_only = make_host("mode-only", cpu_mode="host-passthrough")

    for host in (blank, chosen, mode_only):
        inventory.sync_hypervisor(host.pk)
        host.refresh_from_db()

    assert (blank.virt_type, blank.cpu_mode, blank.machine_type) == ("kvm", "host-model", "")
    assert (chosen.virt_type, chosen.cpu_mode, chosen.cpu_model) == ("qemu", "custom", "qemu64")
    assert (mode_only.virt_type, mode_only.cpu_mode) == ("kvm", "host-passthrough")


@pytest.fixture
def system_driver() -> LibvirtDriver:
    driver = LibvirtDriver(SYSTEM_URI)
    try:
        driver.host_facts()
    except DriverError as err:
        pytest.skip(f"no libvirtd answering on {SYSTEM_URI}: {err}")
    return driver


def test_sync_of_a_real_host_stores_its_domcapabilities_defaults(
    system_driver: LibvirtDriver, region: Region
) -> None:
    """One domcapabilities probe (libvirt takes ~10 s here); test_libvirtd_qemu checks the
    detection itself against `virsh domcapabilities`."""
    host = Hypervisor.objects.create(name="local", region=region, uri=SYSTEM_URI)
    inventory.sync_hypervisor(host.pk)
    host.refresh_from_db()

    assert host.sync_failures == 0, host.last_error
    assert host.virt_type in ("kvm", "qemu")
    # KVM comes with host-model; TCG with QEMU's own default CPU (what boots under TCG).
    assert host.cpu_mode == {"kvm": "host-model", "qemu": "none"}[host.virt_type]
    assert host.machine_type == ""  # libvirt's default machine
    assert host.virtualisation == Virtualisation(host.virt_type, host.cpu_mode)
