"""LibvirtDriver against libvirt's own test driver: real libvirt API, no daemon needed."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from provisioning.drivers import get_driver
from provisioning.drivers import xml as lvxml
from provisioning.drivers.base import (
    Capabilities,
    DhcpHost,
    DomainSpec,
    DomainState,
    NetworkSpec,
    NicSpec,
    NwfilterSpec,
    PermanentDriverError,
    TransientDriverError,
    VolumeSpec,
)
from provisioning.drivers.libvirt import LibvirtDriver
from tests.drivers.conftest import BASE_VOLUME

CLONE = VolumeSpec(
    pool="default", name="k3s-a-0.qcow2", capacity_gib=20, backing_volume=BASE_VOLUME
)
NETWORK = NetworkSpec(
    name="tn-acme",
    bridge="br-tn-7",
    segment_id=7,
    gateway="10.7.0.1",
    prefix=24,
    dhcp_hosts=(DhcpHost("52:54:00:00:07:0a", "10.7.0.10", "k3s-a-0"),),
)


def domain_spec(name: str) -> DomainSpec:
    return DomainSpec(
        name=name,
        vcpus=2,
        memory_mib=2048,
        disk_pool="default",
        disk_volume=CLONE.name,
        nics=(
            NicSpec(NETWORK.name, NETWORK.bridge, "52:54:00:00:07:0a", "10.7.0.10", nwfilter=None),
        ),
        smbios_serial="ds=nocloud-net;s=http://portal.test/guest/tok/",
    )


def volume_xml(driver: LibvirtDriver, name: str) -> ET.Element:
    pool = driver._connection().storagePoolLookupByName("default")
    return ET.fromstring(pool.storageVolLookupByName(name).XMLDesc(0))


def network_spec(driver: LibvirtDriver, name: str) -> NetworkSpec:
    return lvxml.network_spec_from_xml(driver._connection().networkLookupByName(name).XMLDesc(0))


def test_capabilities_and_virtualisation(driver: LibvirtDriver) -> None:
    assert driver.capabilities == Capabilities(False, False, False)
    assert driver.is_test
    assert driver.virtualisation_defaults().virt_type == "test"
    qemu = LibvirtDriver("qemu+ssh://hv/system")
    assert qemu.capabilities == Capabilities(True, True, True)
    assert not qemu.is_test


def test_host_facts_report_the_node_file(driver: LibvirtDriver) -> None:
    facts = driver.host_facts()
    assert facts.vcpus == 8
    assert facts.memory_mib == 16384
    assert facts.hostname  # the test driver reports the real machine's name
    assert [p.name for p in facts.pools] == ["default"]
    # libvirt 9.0's test driver pins every pool at 100 GiB whatever the file says.
    assert facts.pools[0].capacity_bytes == 100 * 1024**3
    assert facts.pools[0].available_bytes <= facts.pools[0].capacity_bytes
    assert facts.domain_names == ()
    assert driver.volume_exists("default", BASE_VOLUME)


def test_volume_clone_is_backed_by_the_base(driver: LibvirtDriver) -> None:
    assert not driver.volume_exists("default", CLONE.name)
    path = driver.ensure_volume(CLONE)
    assert path == "/var/lib/libvirt/images/default/k3s-a-0.qcow2"
    assert driver.ensure_volume(CLONE) == path  # idempotent
    assert driver.volume_exists("default", CLONE.name)
    vol = volume_xml(driver, CLONE.name)
    assert vol.find("target/format").get("type") == "qcow2"  # type: ignore[union-attr]
    assert vol.findtext("backingStore/path") == f"/var/lib/libvirt/images/default/{BASE_VOLUME}"
    assert int(vol.findtext("capacity", "0")) == 20 * 1024**3

    driver.delete_volume("default", CLONE.name)
    driver.delete_volume("default", CLONE.name)  # missing = success
    assert not driver.volume_exists("default", CLONE.name)
    assert driver.volume_exists("default", BASE_VOLUME)


def test_domain_lifecycle_is_idempotent(driver: LibvirtDriver) -> None:
    driver.ensure_volume(CLONE)
    driver.ensure_network(NETWORK)
    spec = domain_spec("k3s-a-0")
    assert driver.domain_state(spec.name) is None

    driver.ensure_domain(spec)
    driver.ensure_domain(spec)
    assert driver.domain_state(spec.name) == DomainState(spec.name, "shutoff")
    assert driver._connection().lookupByName(spec.name).autostart() == 1

    driver.start_domain(spec.name)
    driver.start_domain(spec.name)
    assert driver.domain_state(spec.name) == DomainState(spec.name, "running")
    driver.ensure_domain(spec)  # redefining a running domain keeps it running
    assert driver.domain_state(spec.name) == DomainState(spec.name, "running")

    driver.stop_domain(spec.name)
    driver.stop_domain(spec.name)
    assert driver.domain_state(spec.name) == DomainState(spec.name, "shutoff")

    driver.start_domain(spec.name)
    driver.undefine_domain(spec.name)  # stops first
    driver.undefine_domain(spec.name)
    driver.stop_domain(spec.name)  # missing = success
    assert driver.domain_state(spec.name) is None
    assert driver.host_facts().domain_names == ()


def test_autostart_off_and_domain_xml_reaches_libvirt(driver: LibvirtDriver) -> None:
    spec = replace(domain_spec("k3s-a-1"), autostart=False)
    driver.ensure_domain(spec)
    dom = driver._connection().lookupByName(spec.name)
    assert dom.autostart() == 0
    root = ET.fromstring(dom.XMLDesc(0))
    assert root.get("type") == "test"
    assert root.findtext("sysinfo/system/entry[@name='serial']") == spec.smbios_serial
    assert root.find("devices/disk/source").attrib == {"pool": "default", "volume": CLONE.name}  # type: ignore[union-attr]


def test_list_domains_by_prefix(driver: LibvirtDriver) -> None:
    for name in ("k3s-a-0", "k3s-a-1", "k3s-b-0"):
        driver.ensure_domain(domain_spec(name))
    driver.start_domain("k3s-a-1")
    assert driver.list_domains("k3s-a-") == [
        DomainState("k3s-a-0", "shutoff"),
        DomainState("k3s-a-1", "running"),
    ]
    assert [d.name for d in driver.list_domains("")] == ["k3s-a-0", "k3s-a-1", "k3s-b-0"]
    assert driver.list_domains("nope-") == []


def test_network_ensure_update_and_delete(driver: LibvirtDriver) -> None:
    driver.ensure_network(NETWORK)
    driver.ensure_network(NETWORK)
    assert network_spec(driver, NETWORK.name) == NETWORK
    net = driver._connection().networkLookupByName(NETWORK.name)
    assert (net.isActive(), net.autostart()) == (1, 1)
    uuid = net.UUIDString()

    grown = replace(
        NETWORK,
        dhcp_hosts=(
            *NETWORK.dhcp_hosts,
            DhcpHost("52:54:00:00:07:0b", "10.7.0.11", "k3s-a-1"),
        ),
    )
    driver.ensure_network(grown)
    assert network_spec(driver, NETWORK.name) == grown
    shrunk = replace(NETWORK, dhcp_hosts=grown.dhcp_hosts[1:])
    driver.ensure_network(shrunk)
    assert network_spec(driver, NETWORK.name) == shrunk

    moved = replace(shrunk, bridge="br-tn-8", mtu=1400)
    driver.ensure_network(moved)  # not a lease change: redefined and restarted
    assert network_spec(driver, NETWORK.name) == moved
    net = driver._connection().networkLookupByName(NETWORK.name)
    assert (net.UUIDString(), net.isActive()) == (uuid, 1)

    driver.delete_network(NETWORK.name)
    driver.delete_network(NETWORK.name)
    assert NETWORK.name not in driver._connection().listNetworks()


def test_nwfilter_is_unsupported_on_the_test_driver(driver: LibvirtDriver) -> None:
    with pytest.raises(PermanentDriverError) as exc:
        driver.ensure_nwfilter(NwfilterSpec("fw-1", "10.7.0.0/24", ()))
    assert exc.value.code == "unsupported"
    driver.delete_nwfilter("fw-1")  # nothing could exist, so deleting is a no-op


def test_errors_are_mapped(driver: LibvirtDriver) -> None:
    missing_base = VolumeSpec("default", "k3s-x.qcow2", 20, backing_volume="no-such-base.qcow2")
    with pytest.raises(PermanentDriverError) as exc:
        driver.ensure_volume(missing_base)
    assert exc.value.code == "no_such_volume"
    assert not driver.volume_exists("default", "k3s-x.qcow2")

    with pytest.raises(PermanentDriverError) as exc:
        driver.ensure_volume(VolumeSpec("no-pool", "v", 1, None))
    assert exc.value.code == "no_such_pool"

    with pytest.raises(PermanentDriverError) as exc:
        driver.start_domain("k3s-missing")
    assert exc.value.code == "no_such_domain"

    bad_mac = replace(domain_spec("k3s-bad"), nics=(NicSpec("n", "br", "zz", "1", None),))
    with pytest.raises(PermanentDriverError) as exc:
        driver.ensure_domain(bad_mac)
    assert exc.value.code == "invalid_config"


def test_unreachable_host_is_transient() -> None:
    with pytest.raises(TransientDriverError) as exc:
        LibvirtDriver("qemu+tcp://127.0.0.1:1/system").host_facts()
    assert exc.value.code == "unreachable"
    assert "Connection refused" in exc.value.message


def test_connection_is_cached_and_reopened(node_uri: str) -> None:
    driver = get_driver(node_uri)
    assert get_driver(node_uri) is driver
    conn = driver._connection()  # type: ignore[attr-defined]
    assert driver._connection() is conn  # type: ignore[attr-defined]
    assert LibvirtDriver(node_uri)._connection() is conn  # one connection per URI per process

    driver.ensure_domain(domain_spec("k3s-a-0"))
    conn.close()
    reopened = driver._connection()  # type: ignore[attr-defined]
    assert reopened is not conn and reopened.isAlive()
    # The test driver's state lived in the closed connection: a fresh one starts from the file.
    assert driver.domain_state("k3s-a-0") is None
    assert driver.host_facts().vcpus == 8
