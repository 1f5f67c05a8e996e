"""DHCP entries converge whatever a concurrent worker did first, every "not found" on release
is done, a shared nwfilter still in use says "try again", and a console tail is honest.

The first tests run on libvirt's test driver; those marked `libvirtd` use qemu:///system
(where libvirt answers VIR_ERR_OPERATION_INVALID, code 55, for "there is an existing dhcp host
entry ... that matches", "couldn't locate a matching dhcp host entry" and "nwfilter is in
use") and skip with the reason without a daemon.
"""

from __future__ import annotations

import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import libvirt
import pytest

from provisioning.drivers import console
from provisioning.drivers import xml as lvxml
from provisioning.drivers.base import (
    DhcpHost,
    DriverError,
    NetworkSpec,
    NwfilterSpec,
    PermanentDriverError,
    TransientDriverError,
)
from provisioning.drivers.hostnet.site import Site
from provisioning.drivers.libvirt import LibvirtDriver, networks
from tests.drivers.test_xml import DOMAIN

A = DhcpHost("52:54:00:d4:c0:01", "10.30.0.2", "k3s-a", lease_seconds=300)
B = DhcpHost("52:54:00:d4:c0:02", "10.30.0.3", "k3s-b", lease_seconds=300)
SPEC = NetworkSpec("tn-77", "tnbr77", 77, "10.30.0.1", 24, dhcp_hosts=(A, B))


def hosts_of(driver: LibvirtDriver, name: str) -> tuple[DhcpHost, ...]:
    net = driver._connection().networkLookupByName(name)
    return lvxml.network_spec_from_xml(net.XMLDesc(0)).dhcp_hosts


def test_lease_time_round_trips_through_the_network_xml() -> None:
    assert lvxml.network_spec_from_xml(lvxml.network_xml(SPEC)) == SPEC
    minutes = '<network><bridge name="b"/><ip address="10.1.0.1" prefix="24"><dhcp>'
    minutes += '<host mac="m" ip="10.1.0.2" name="n"><lease expiry="5" unit="minutes"/></host>'
    minutes += "</dhcp></ip></network>"
    assert lvxml.network_spec_from_xml(minutes).dhcp_hosts[0].lease_seconds == 300


def test_adding_an_entry_already_there_and_removing_one_already_gone_are_done(
    driver: LibvirtDriver,
) -> None:
    driver.ensure_network(SPEC)
    net = driver._connection().networkLookupByName(SPEC.name)
    # What a worker does with a stale view: another worker already made the same change.
    networks.sync_dhcp_hosts(net, current=(), desired=(A,))  # A is already there
    assert hosts_of(driver, SPEC.name) == (A, B)
    networks.sync_dhcp_hosts(net, current=(A, B), desired=(A,))
    networks.sync_dhcp_hosts(net, current=(A, B), desired=(A,))  # B is already gone
    assert hosts_of(driver, SPEC.name) == (A,)
    driver.ensure_network(replace(SPEC, dhcp_hosts=(A,)))
    assert hosts_of(driver, SPEC.name) == (A,)


def test_an_entry_that_clashes_is_still_an_error(driver: LibvirtDriver) -> None:
    driver.ensure_network(SPEC)
    net = driver._connection().networkLookupByName(SPEC.name)
    clash = replace(A, ip="10.30.0.9")  # A's MAC with another address: not the wanted state
    with pytest.raises(libvirt.libvirtError):
        networks.sync_dhcp_hosts(net, current=(), desired=(clash,))


def test_a_lease_time_change_is_applied_in_place(driver: LibvirtDriver) -> None:
    driver.ensure_network(replace(SPEC, dhcp_hosts=(replace(A, lease_seconds=None),)))
    driver.ensure_network(replace(SPEC, dhcp_hosts=(A,)))
    assert hosts_of(driver, SPEC.name) == (A,)


def test_every_not_found_on_release_is_done(driver: LibvirtDriver) -> None:
    driver.undefine_domain("k3s-never-defined")
    driver.delete_volume("default", "never-created.qcow2")
    driver.delete_volume("no-such-pool", "never-created.qcow2")
    driver.delete_network("tn-never")
    driver.delete_nwfilter("k3s-fw-never")  # the test driver has none at all
    driver.ensure_network(SPEC)
    driver.delete_network(SPEC.name)
    driver.delete_network(SPEC.name)


def test_the_test_driver_says_it_has_no_leases_and_no_console(driver: LibvirtDriver) -> None:
    assert not driver.capabilities.dhcp_leases
    with pytest.raises(PermanentDriverError, match="no DHCP leases"):
        driver.dhcp_leases(SPEC.name)
    assert (
        driver.console_tail("k3s-any", 20) == "no console log: libvirt's test driver runs no guest"
    )


def test_a_remote_host_console_is_read_by_its_own_agent() -> None:
    remote = LibvirtDriver("qemu+ssh://hv-9.example/system")  # never connects for this
    assert remote.console_tail("k3s-any", 20) == (
        "no console log: it is on hv-9.example; its host agent reads it there"
    )


def test_console_tail_keeps_the_last_lines_without_terminal_escapes(tmp_path: Path) -> None:
    log = tmp_path / "k3s-a-console.log"
    lines = [f"[  {n}.000000] line {n}" for n in range(100)]
    log.write_bytes(b"\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS\r\n" + "\r\n".join(lines).encode())
    assert console.tail(str(log), 3) == "\n".join(lines[-3:])
    assert console.tail(str(tmp_path / "none.log"), 3).startswith("no console log: ")
    (tmp_path / "empty.log").write_bytes(b"")
    assert "is empty" in console.tail(str(tmp_path / "empty.log"), 3)


def test_a_real_domain_logs_its_serial_console_and_a_test_one_does_not() -> None:
    path = f"/var/log/libvirt/qemu/{DOMAIN.name}-console.log"
    assert lvxml.console_log_path(DOMAIN.name) == path
    assert lvxml.console_log_of(lvxml.domain_xml(DOMAIN)) == path
    assert 'append="off"' in lvxml.domain_xml(DOMAIN)
    assert lvxml.console_log_of(lvxml.domain_xml(DOMAIN, test_driver=True)) is None


# --- qemu:///system ------------------------------------------------------------------------

SUFFIX = secrets.token_hex(3)
SUBNET = f"10.249.{secrets.randbelow(250) + 1}"
REAL = NetworkSpec(
    f"k3sd-{SUFFIX}",
    f"k3sdbr{SUFFIX}",
    4343,
    f"{SUBNET}.1",
    24,
    dhcp_hosts=(replace(A, ip=f"{SUBNET}.2"), replace(B, ip=f"{SUBNET}.3")),
)
# The same as a libvirt network: the test driver's kind, whose in-place updates were
# modelled on what a real libvirtd answers (real hosts build theirs with drivers.hostnet).
AS_LIBVIRT_NETWORK = replace(REAL, name=f"k3sl-{SUFFIX}", bridge=f"k3slbr{SUFFIX}")


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LibvirtDriver]:
    site = Site(tmp_path_factory.mktemp("hostnet"), "http://127.0.0.1:9", "k", prefix="k3sd-")
    driver = LibvirtDriver("qemu:///system", site)
    try:
        driver.host_facts()
    except DriverError as err:
        pytest.skip(f"no libvirtd answering on qemu:///system: {err}")
    try:
        yield driver
    finally:
        driver.undefine_domain(f"k3sd-{SUFFIX}")
        driver.delete_nwfilter(f"k3sd-{SUFFIX}")
        driver.delete_network(REAL.name)
        networks.LibvirtNetworks(driver._connection).delete_network(AS_LIBVIRT_NETWORK.name)
        # libvirt keeps a domain's logs after it is gone; this test's go with it.
        console_log = Path(lvxml.console_log_path(f"k3sd-{SUFFIX}"))
        for log in (console_log, console_log.with_name(f"k3sd-{SUFFIX}.log")):
            log.unlink(missing_ok=True)


@pytest.mark.libvirtd
def test_real_libvirtd_dhcp_entries_converge_from_a_stale_view(real: LibvirtDriver) -> None:
    as_libvirt = networks.LibvirtNetworks(real._connection)
    spec = AS_LIBVIRT_NETWORK
    as_libvirt.ensure_network(spec)
    a, b = spec.dhcp_hosts
    net = real._connection().networkLookupByName(spec.name)
    with pytest.raises(libvirt.libvirtError) as raw:  # what libvirt itself answers
        net.update(
            libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
            libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST,
            -1,
            lvxml.dhcp_host_xml(a),
            libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG | libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE,
        )
    assert raw.value.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID
    assert "existing dhcp host entry" in (raw.value.get_error_message() or "")
    networks.sync_dhcp_hosts(net, current=(), desired=(a,))
    networks.sync_dhcp_hosts(net, current=(a, b), desired=(a,))
    networks.sync_dhcp_hosts(net, current=(a, b), desired=(a,))  # "couldn't locate": done
    assert hosts_of(real, spec.name) == (a,)
    hostsfile = Path(f"/var/lib/libvirt/dnsmasq/{spec.name}.hostsfile")
    if hostsfile.exists():  # dnsmasq gets the short lease
        assert hostsfile.read_text().strip() == f"{a.mac},{a.ip},{a.name},300s"
    assert as_libvirt.dhcp_leases(spec.name) == ()  # no guest ever asked


def _serial_domain(name: str, bridge: str, nwfilter: str) -> str:
    """A disk-less TCG domain whose BIOS writes to the logged serial console, then stops."""
    root = ET.Element("domain", type="qemu")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "memory", unit="MiB").text = "64"
    os_el = ET.SubElement(root, "os")
    ET.SubElement(os_el, "type").text = "hvm"
    ET.SubElement(os_el, "bios", useserial="yes")
    devices = ET.SubElement(root, "devices")
    iface = ET.SubElement(devices, "interface", type="bridge")
    ET.SubElement(iface, "source", bridge=bridge)
    ET.SubElement(iface, "filterref", filter=nwfilter)
    ET.SubElement(iface, "rom", enabled="no")  # no PXE attempt: the BIOS gives up at once
    serial = ET.SubElement(devices, "serial", type="pty")
    ET.SubElement(serial, "log", file=lvxml.console_log_path(name), append="off")
    ET.SubElement(serial, "target", port="0")
    return ET.tostring(root, encoding="unicode")


@pytest.mark.libvirtd
def test_real_libvirtd_console_tail_and_a_shared_nwfilter_in_use(real: LibvirtDriver) -> None:
    name = f"k3sd-{SUFFIX}"
    real.ensure_network(REAL)
    real.ensure_nwfilter(NwfilterSpec(name, f"{SUBNET}.0/24", rules=()))
    dom = real._connection().defineXML(_serial_domain(name, REAL.bridge, name))
    dom.create()
    deadline = time.monotonic() + 30
    while "No bootable device" not in (tail := real.console_tail(name, 5)):
        assert time.monotonic() < deadline, tail
        time.sleep(0.5)
    assert "SeaBIOS" in real.console_tail(name, 50)
    assert "\x1b" not in tail
    with pytest.raises(TransientDriverError) as busy:
        real.delete_nwfilter(name)  # the running domain still uses it: "try again"
    assert busy.value.code == "in_use"
    real.undefine_domain(name)
    real.delete_nwfilter(name)
    real.delete_nwfilter(name)
    assert real.console_tail(name, 5) == "no console log: the domain is gone or logs no console"
