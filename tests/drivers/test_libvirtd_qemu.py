"""LibvirtDriver against a real libvirtd with QEMU (software emulation): the production path.

Skips with the reason when no daemon answers on qemu:///system. Every object carries a random
suffix and is removed in a `finally`, so a failed run leaves nothing behind on the host.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from provisioning.drivers import xml as lvxml
from provisioning.drivers.base import (
    DhcpHost,
    DomainSpec,
    DomainState,
    DriverError,
    FirewallRuleSpec,
    NetworkSpec,
    NicSpec,
    NwfilterSpec,
    Virtualisation,
    VolumeSpec,
)
from provisioning.drivers.hostnet import processes
from provisioning.drivers.hostnet.site import Site
from provisioning.drivers.libvirt import LibvirtDriver

pytestmark = pytest.mark.libvirtd

URI = "qemu:///system"
SUFFIX = secrets.token_hex(3)
BASE = VolumeSpec(pool=f"k3st-{SUFFIX}", name="base.qcow2", capacity_gib=1, backing_volume=None)
CLONE = VolumeSpec(BASE.pool, "k3s-node-0.qcow2", capacity_gib=2, backing_volume=BASE.name)
MAC = "52:54:00:7e:57:01"
# A /24 drawn at random from 10.250.0.0/16 so parallel runs and host routes rarely clash.
SUBNET = f"10.250.{secrets.randbelow(250) + 1}"
NETWORK = NetworkSpec(
    name=f"k3st-{SUFFIX}",
    bridge=f"k3stbr{SUFFIX}",
    # High in the VNI space: its links (vx<VNI>, tg<VNI>) meet no portal's on this host.
    segment_id=16_000_000 + secrets.randbelow(700_000),
    gateway=f"{SUBNET}.1",
    prefix=24,
    dhcp_hosts=(DhcpHost(MAC, f"{SUBNET}.10", "k3s-node-0"),),
)
NWFILTER = NwfilterSpec(
    name=f"k3st-{SUFFIX}",
    network_cidr=f"{SUBNET}.0/24",
    rules=(FirewallRuleSpec("ingress", "tcp", 6443, 6443, "0.0.0.0/0"),),
)
DOMAIN = DomainSpec(
    name=f"k3st-{SUFFIX}",
    vcpus=1,
    memory_mib=96,
    disk_pool=CLONE.pool,
    disk_volume=CLONE.name,
    nics=(NicSpec(NETWORK.name, NETWORK.bridge, MAC, f"{SUBNET}.10", nwfilter=NWFILTER.name),),
    smbios_serial="ds=nocloud-net;s=http://portal.test/guest/tok/",
    virtualisation=Virtualisation(virt_type="qemu", cpu_mode="none"),
)


@dataclass(frozen=True)
class Host:
    driver: LibvirtDriver
    pool_dir: Path


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    # QEMU runs as libvirt-qemu: the pool must sit in a directory it can traverse.
    root = Path(tempfile.mkdtemp(prefix="k3s-drivers-"))
    root.chmod(0o755)
    site = Site(root / "hostnet", "http://127.0.0.1:9", "test-key", prefix=f"k3st-{SUFFIX}-")
    driver = LibvirtDriver(URI, site)
    try:
        driver.host_facts()
    except DriverError as err:
        shutil.rmtree(root)
        pytest.skip(f"no libvirtd answering on {URI}: {err}")
    try:
        driver.ensure_dir_pool(BASE.pool, str(root / "pool"))
        driver.ensure_dir_pool(BASE.pool, str(root / "pool"))  # idempotent
        yield Host(driver, root / "pool")
    finally:
        driver.undefine_domain(DOMAIN.name)
        driver.delete_nwfilter(NWFILTER.name)
        driver.delete_network(NETWORK.name)
        for vol in (CLONE, BASE):
            driver.delete_volume(vol.pool, vol.name)
        driver.delete_pool(BASE.pool)
        shutil.rmtree(root)


def qemu_img_info(path: str) -> dict[str, object]:
    out = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", path], check=True, capture_output=True
    )
    info: dict[str, object] = json.loads(out.stdout)
    return info


def test_pool_facts(host: Host) -> None:
    pools = {p.name: p for p in host.driver.host_facts().pools}
    assert pools[BASE.pool].capacity_bytes > 0
    assert host.pool_dir.is_dir()


def test_clone_is_a_qcow2_overlay_of_the_base(host: Host) -> None:
    base_path = host.driver.ensure_volume(BASE)
    clone_path = host.driver.ensure_volume(CLONE)
    assert host.driver.ensure_volume(CLONE) == clone_path
    assert Path(base_path).parent == Path(clone_path).parent == host.pool_dir
    info = qemu_img_info(clone_path)
    assert info["format"] == "qcow2"
    assert info["backing-filename"] == base_path
    assert info["virtual-size"] == 2 * 1024**3
    # Copy-on-write: the overlay holds only metadata, nothing was copied from the base.
    assert Path(clone_path).stat().st_size < 1024**2


def test_network_define_start_delete(host: Host) -> None:
    spec = replace(NETWORK, name=f"k3st-n{SUFFIX}", bridge=f"k3stn{SUFFIX}")
    try:
        host.driver.ensure_network(spec)
        host.driver.ensure_network(spec)
        assert Path(f"/sys/class/net/{spec.bridge}").exists()
        assert Path(f"/sys/class/net/{spec.bridge}/mtu").read_text().strip() == "1450"
        grown = replace(
            spec,
            dhcp_hosts=(
                *spec.dhcp_hosts,
                DhcpHost("52:54:00:7e:57:02", f"{SUBNET}.11", "n1"),
            ),
        )
        site = host.driver.networks.site  # type: ignore[union-attr]
        pidfile = site.state_dir(spec.name) / "dnsmasq.pid"
        dnsmasq = processes.running(pidfile)
        assert dnsmasq is not None
        host.driver.ensure_network(grown)  # a lease change is applied live to dnsmasq
        hostsfile = (site.state_dir(spec.name) / "dnsmasq.hosts").read_text()
        assert f"52:54:00:7e:57:02,{SUBNET}.11,n1," in hostsfile
        assert processes.running(pidfile) == dnsmasq  # re-read (SIGHUP), not restarted
        assert site.tenant_ns(spec.name) in site.namespaces()
    finally:
        host.driver.delete_network(spec.name)
        host.driver.delete_network(spec.name)
    assert not Path(f"/sys/class/net/{spec.bridge}").exists()
    assert host.driver.networks.site.tenant_ns(spec.name) not in site.namespaces()  # type: ignore[union-attr]


def test_nwfilter_define_redefine_undefine(host: Host) -> None:
    spec = replace(NWFILTER, name=f"k3st-f{SUFFIX}")
    conn = host.driver._connection()
    try:
        host.driver.ensure_nwfilter(spec)
        uuid = conn.nwfilterLookupByName(spec.name).UUIDString()
        wider = replace(
            spec,
            rules=(
                *spec.rules,
                FirewallRuleSpec("ingress", "udp", 8472, 8472, f"{SUBNET}.0/24"),
            ),
        )
        host.driver.ensure_nwfilter(wider)
        nwf = conn.nwfilterLookupByName(spec.name)
        assert nwf.UUIDString() == uuid
        root = ET.fromstring(nwf.XMLDesc(0))
        assert root.find("filterref").get("filter") == "clean-traffic"  # type: ignore[union-attr]
        assert root.find("rule/udp").get("dstportstart") == "8472"  # type: ignore[union-attr]
    finally:
        host.driver.delete_nwfilter(spec.name)
        host.driver.delete_nwfilter(spec.name)
    assert spec.name not in conn.listNWFilters()


def test_tiny_domain_starts_on_the_tenant_network_behind_its_filter(host: Host) -> None:
    driver = host.driver
    driver.ensure_volume(BASE)
    driver.ensure_volume(CLONE)
    driver.ensure_network(NETWORK)
    driver.ensure_nwfilter(NWFILTER)
    driver.ensure_domain(DOMAIN)
    driver.ensure_domain(DOMAIN)
    assert driver.domain_state(DOMAIN.name) == DomainState(DOMAIN.name, "shutoff")

    started = time.monotonic()
    driver.start_domain(DOMAIN.name)
    driver.start_domain(DOMAIN.name)
    print(f"domain start took {time.monotonic() - started:.1f}s")
    assert driver.domain_state(DOMAIN.name) == DomainState(DOMAIN.name, "running")
    assert driver.list_domains(DOMAIN.name) == [DomainState(DOMAIN.name, "running")]

    live = ET.fromstring(driver._connection().lookupByName(DOMAIN.name).XMLDesc(0))
    assert live.get("type") == "qemu"
    tap = live.find("devices/interface/target").get("dev")  # type: ignore[union-attr]
    assert Path(f"/sys/class/net/{NETWORK.bridge}/brif/{tap}").exists()
    assert Path(f"/sys/class/net/{tap}/mtu").read_text().strip() == "1450"
    assert live.find("devices/interface/filterref").get("filter") == NWFILTER.name  # type: ignore[union-attr]
    bindings = [b.portDev() for b in driver._connection().listAllNWFilterBindings(0)]
    assert tap in bindings  # libvirt instantiated the filter on the guest's tap

    driver.ensure_nwfilter(NWFILTER)  # redefining re-applies live while the guest runs
    driver.stop_domain(DOMAIN.name)
    assert driver.domain_state(DOMAIN.name) == DomainState(DOMAIN.name, "shutoff")
    driver.undefine_domain(DOMAIN.name)
    assert driver.domain_state(DOMAIN.name) is None


def test_defaults_follow_the_hosts_domcapabilities(host: Host) -> None:
    """KVM only where libvirt resolves host-model to a usable CPU (not on nested or
    paravirtual KVM, where QEMU aborts at start); else software emulation."""
    detected = host.driver.virtualisation_defaults()
    try:
        caps = subprocess.run(
            ["virsh", "-c", URI, "domcapabilities", "--virttype", "kvm"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except subprocess.CalledProcessError:
        caps = ""
    if caps and lvxml.kvm_usable(caps):
        assert (detected.virt_type, detected.cpu_mode) == ("kvm", "host-model")
    else:
        assert (detected.virt_type, detected.cpu_mode) == ("qemu", "none")
