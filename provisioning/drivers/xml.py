"""libvirt XML built (and read back) with ElementTree, so names and values are always escaped.

Builders are pure functions returning a `str`; golden files in tests/drivers/golden pin them.
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET

from provisioning.drivers.base import (
    DhcpHost,
    DomainSpec,
    FirewallRuleSpec,
    NetworkSpec,
    NicSpec,
    NwfilterSpec,
    PermanentDriverError,
    Virtualisation,
    VolumeSpec,
)

# libvirt keeps foreign <metadata> children verbatim if they live in their own namespace.
PORTAL_NS = "https://k3s-cloud-portal.invalid/xmlns/libvirt/1"
ET.register_namespace("portal", PORTAL_NS)

CONSOLE_LOG_DIR = "/var/log/libvirt/qemu"

# nwfilter rule priorities: lower runs first (libvirt's range is -1000..1000).
_PRIO_ESTABLISHED = 100
_PRIO_SAME_NETWORK = 200
_PRIO_USER_RULE = 300
_PRIO_DROP = 1000


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _to_str(root: ET.Element) -> str:
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def _parse(xml: str) -> ET.Element:
    # Only libvirt's own output is parsed here (never user input), so stdlib parsing is safe.
    return ET.fromstring(xml)  # noqa: S314


def domain_xml(spec: DomainSpec, test_driver: bool = False, uuid: str | None = None) -> str:
    """A persistent domain booting the node's volume; `uuid` keeps a redefinition in place.

    The host's virtualisation says the domain type, CPU and machine; libvirt's test driver
    takes type 'test' and nothing else."""
    virt = spec.virtualisation
    root = ET.Element("domain", type="test" if test_driver else virt.virt_type)
    _sub(root, "name", spec.name)
    if uuid is not None:
        _sub(root, "uuid", uuid)
    _sub(root, "memory", str(spec.memory_mib), unit="MiB")
    _sub(root, "vcpu", str(spec.vcpus))
    system = _sub(_sub(root, "sysinfo", type="smbios"), "system")
    _sub(system, "entry", spec.smbios_serial, name="serial")
    os_el = _sub(root, "os")
    machine = {"machine": virt.machine_type} if virt.machine_type and not test_driver else {}
    _sub(os_el, "type", "hvm", **machine)
    _sub(os_el, "boot", dev="hd")
    _sub(os_el, "smbios", mode="sysinfo")
    features = _sub(root, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    if not test_driver:
        _cpu(root, virt)
    _sub(root, "clock", offset="utc")
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    _sub(root, "on_crash", "restart")
    devices = _sub(root, "devices")
    disk = _sub(devices, "disk", type="volume", device="disk")
    _sub(disk, "driver", name="qemu", type="qcow2")
    _sub(disk, "source", pool=spec.disk_pool, volume=spec.disk_volume)
    _sub(disk, "target", dev="vda", bus="virtio")
    for nic in spec.nics:
        _nic(devices, nic, bridged=not test_driver)
    serial = _sub(devices, "serial", type="pty")
    if not test_driver:  # the test driver runs no guest: there is nothing to log
        # virtlogd keeps the console's output, read back when a guest stays silent.
        _sub(serial, "log", file=console_log_path(spec.name), append="off")
    _sub(serial, "target", port="0")
    _sub(_sub(devices, "console", type="pty"), "target", type="serial", port="0")
    # cloud-init and K3s generate keys at first boot; without a virtio RNG that can stall.
    _sub(_sub(devices, "rng", model="virtio"), "backend", "/dev/urandom", model="random")
    return _to_str(root)


def _cpu(root: ET.Element, virt: Virtualisation) -> None:
    if virt.cpu_mode in ("host-model", "host-passthrough"):
        _sub(root, "cpu", mode=virt.cpu_mode)
    elif virt.cpu_mode == "custom":
        cpu = _sub(root, "cpu", mode="custom", match="exact")
        _sub(cpu, "model", virt.cpu_model, fallback="forbid")
    # "none": no <cpu> element, QEMU's default model for the domain type.


def kvm_usable(domcapabilities: str) -> bool:
    """KVM can run guests when host-model is supported and the model it resolves to is
    usable. Nested or paravirtual KVM (e.g. PVM) reports the type but no usable model,
    and QEMU then aborts at start ("failed to set MSR")."""
    root = _parse(domcapabilities)
    host_model = root.find("./cpu/mode[@name='host-model']")
    if host_model is None or host_model.get("supported") != "yes":
        return False
    model = host_model.findtext("model")
    listed = root.find(f"./cpu/mode[@name='custom']/model[.='{model}']") if model else None
    return listed is None or listed.get("usable") == "yes"


def console_log_path(domain: str) -> str:
    """Where a domain's serial console is logged (libvirt's own log directory for QEMU)."""
    return f"{CONSOLE_LOG_DIR}/{domain}-console.log"


def console_log_of(xml: str) -> str | None:
    """The log file of a domain's first serial console, from its libvirt XML."""
    log = _parse(xml).find("devices/serial/log")
    return log.get("file") if log is not None else None


def _nic(devices: ET.Element, nic: NicSpec, bridged: bool) -> None:
    """On a real host the NIC joins the tenant bridge the host agent built
    (`drivers.hostnet`); the test driver has only libvirt networks."""
    iface = _sub(devices, "interface", type="bridge" if bridged else "network")
    _sub(iface, "mac", address=nic.mac)
    if bridged:
        _sub(iface, "source", bridge=nic.bridge)
    else:
        _sub(iface, "source", network=nic.network)
    _sub(iface, "model", type="virtio")
    if bridged:  # the guest's virtio NIC learns the overlay's MTU from the host
        _sub(iface, "mtu", size=str(nic.mtu))
    if nic.nwfilter is not None:
        ref = _sub(iface, "filterref", filter=nic.nwfilter)
        _sub(ref, "parameter", name="IP", value=nic.ip)


def volume_xml(spec: VolumeSpec, backing: tuple[str, str] | None) -> str:
    """A qcow2 volume; `backing` is (path, format) of the base it overlays copy-on-write."""
    root = ET.Element("volume")
    _sub(root, "name", spec.name)
    _sub(root, "capacity", str(spec.capacity_gib), unit="GiB")
    _sub(root, "allocation", "0")
    _sub(_sub(root, "target"), "format", type="qcow2")
    if backing is not None:
        store = _sub(root, "backingStore")
        _sub(store, "path", backing[0])
        _sub(store, "format", type=backing[1])
    return _to_str(root)


def upload_volume_xml(name: str, size_bytes: int) -> str:
    """An empty qcow2 volume that a whole qcow2 file is then uploaded into."""
    root = ET.Element("volume")
    _sub(root, "name", name)
    _sub(root, "capacity", str(size_bytes), unit="bytes")
    _sub(root, "allocation", "0")
    target = _sub(root, "target")
    _sub(target, "format", type="qcow2")
    # Every node's overlay reads it, whoever QEMU runs as: world-readable, never written.
    _sub(_sub(target, "permissions"), "mode", "0644")
    return _to_str(root)


def volume_target(xml: str) -> tuple[str, str]:
    """(path, format) of a volume from its libvirt XML."""
    target = _parse(xml).find("target")
    path = target.findtext("path") if target is not None else None
    fmt = target.find("format") if target is not None else None
    if path is None or fmt is None:
        raise PermanentDriverError("invalid_config", "volume XML has no target path/format")
    return path, fmt.get("type", "raw")


def dir_pool_xml(name: str, path: str) -> str:
    root = ET.Element("pool", type="dir")
    _sub(root, "name", name)
    _sub(_sub(root, "target"), "path", path)
    return _to_str(root)


def network_xml(spec: NetworkSpec, uuid: str | None = None) -> str:
    """A tenant network as libvirt's test driver keeps it: no <forward>, static DHCP only
    (the portal's IPAM decides). Real hosts build theirs from Linux parts (`hostnet`)."""
    root = ET.Element("network")
    _sub(root, "name", spec.name)
    if uuid is not None:
        _sub(root, "uuid", uuid)
    # Recording the VNI here makes hosts auditable.
    _sub(_sub(root, "metadata"), f"{{{PORTAL_NS}}}segment", vni=str(spec.segment_id))
    _sub(root, "bridge", name=spec.bridge, stp="on", delay="0")
    _sub(root, "mtu", size=str(spec.mtu))
    ip = _sub(root, "ip", address=spec.gateway, prefix=str(spec.prefix))
    dhcp = _sub(ip, "dhcp")
    for host in spec.dhcp_hosts:
        dhcp.append(_dhcp_host_element(host))
    return _to_str(root)


def _dhcp_host_element(host: DhcpHost) -> ET.Element:
    el = ET.Element("host", mac=host.mac, ip=host.ip, name=host.name)
    if host.lease_seconds is not None:
        _sub(el, "lease", expiry=str(host.lease_seconds), unit="seconds")
    return el


_LEASE_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600}


def _lease_seconds(host: ET.Element) -> int | None:
    lease = host.find("lease")
    if lease is None:
        return None
    return int(lease.get("expiry", "0")) * _LEASE_UNITS.get(lease.get("unit", "minutes"), 60)


def dhcp_host_xml(host: DhcpHost) -> str:
    """One <host/> for virNetworkUpdate, which adds or removes a lease without a restart."""
    return ET.tostring(_dhcp_host_element(host), encoding="unicode")


def network_spec_from_xml(xml: str) -> NetworkSpec:
    """Read back what network_xml wrote, to tell whether a defined network matches a spec."""
    root = _parse(xml)
    bridge = root.find("bridge")
    ip = root.find("ip")
    mtu = root.find("mtu")
    segment = root.find(f"metadata/{{{PORTAL_NS}}}segment")
    if bridge is None or ip is None:
        raise PermanentDriverError("invalid_config", "network XML has no bridge or ip")
    hosts = tuple(
        DhcpHost(
            mac=h.get("mac", ""),
            ip=h.get("ip", ""),
            name=h.get("name", ""),
            lease_seconds=_lease_seconds(h),
        )
        for h in ip.iterfind("dhcp/host")
    )
    return NetworkSpec(
        name=root.findtext("name", ""),
        bridge=bridge.get("name", ""),
        segment_id=int(segment.get("vni", "-1")) if segment is not None else -1,
        gateway=ip.get("address", ""),
        prefix=int(ip.get("prefix", "-1")),
        dhcp_hosts=hosts,
        mtu=int(mtu.get("size", "1500")) if mtu is not None else 1500,
    )


def _ip_attrs(cidr: str, side: str) -> dict[str, str]:
    """srcipaddr/srcipmask (side='src') or dst*; nothing for a match-everything /0."""
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError as err:
        raise PermanentDriverError("invalid_config", f"bad CIDR {cidr!r}") from err
    if net.prefixlen == 0:
        return {}
    return {f"{side}ipaddr": str(net.network_address), f"{side}ipmask": str(net.prefixlen)}


def _user_rule(root: ET.Element, rule: FirewallRuleSpec) -> None:
    directions = {"ingress": ("in", "src"), "egress": ("out", "dst")}
    if rule.direction not in directions:
        raise PermanentDriverError("invalid_config", f"bad direction {rule.direction!r}")
    if rule.protocol not in ("tcp", "udp", "icmp", "all"):
        raise PermanentDriverError("invalid_config", f"bad protocol {rule.protocol!r}")
    direction, side = directions[rule.direction]
    attrs = _ip_attrs(rule.cidr, side)
    if rule.protocol in ("tcp", "udp") and rule.port_min is not None:
        attrs["dstportstart"] = str(rule.port_min)
        attrs["dstportend"] = str(rule.port_max if rule.port_max is not None else rule.port_min)
    el = _sub(root, "rule", action="accept", direction=direction, priority=str(_PRIO_USER_RULE))
    _sub(el, rule.protocol, **attrs)


def nwfilter_xml(spec: NwfilterSpec, uuid: str | None = None) -> str:
    """Anti-spoofing plus the tenant's accept rules; any other ingress is dropped."""
    root = ET.Element("filter", name=spec.name, chain="root")
    if uuid is not None:
        _sub(root, "uuid", uuid)
    # clean-traffic blocks MAC/IP/ARP spoofing using the IP parameter each NIC passes in.
    _sub(root, "filterref", filter="clean-traffic")
    established = _sub(
        root, "rule", action="accept", direction="inout", priority=str(_PRIO_ESTABLISHED)
    )
    _sub(established, "all", state="ESTABLISHED,RELATED")
    for direction, side in (("in", "src"), ("out", "dst")):
        same_net = _sub(
            root, "rule", action="accept", direction=direction, priority=str(_PRIO_SAME_NETWORK)
        )
        _sub(same_net, "all", **_ip_attrs(spec.network_cidr, side))
    for rule in spec.rules:
        _user_rule(root, rule)
    drop = _sub(root, "rule", action="drop", direction="in", priority=str(_PRIO_DROP))
    _sub(drop, "all")
    return _to_str(root)


def test_node_xml(
    hostname: str,
    vcpus: int,
    memory_mib: int,
    pool_name: str,
    pool_capacity_gib: int,
    base_volumes: tuple[str, ...],
) -> str:
    """A node description for libvirt's test driver (`test:///abs/path.xml`).

    libvirt 9.0's test driver always reports the real machine's hostname and pins every pool at
    100 GiB, so `hostname` is only a comment telling the demo files apart and the pool capacity
    written here documents intent; the portal's own accounting is what enforces capacity.
    """
    root = ET.Element("node")
    root.append(ET.Comment(f" demo hypervisor {hostname} "))
    cpu = _sub(root, "cpu")
    for tag, value in (
        ("nodes", 1),
        ("sockets", 1),
        ("cores", vcpus),
        ("threads", 1),
        ("active", vcpus),
        ("mhz", 2400),
    ):
        _sub(cpu, tag, str(value))
    _sub(cpu, "model", "x86_64")
    _sub(root, "memory", str(memory_mib * 1024))  # KiB
    pool = _sub(root, "pool", type="dir")
    _sub(pool, "name", pool_name)
    _sub(pool, "capacity", str(pool_capacity_gib), unit="GiB")
    _sub(pool, "allocation", "0")
    _sub(pool, "available", str(pool_capacity_gib), unit="GiB")
    # Nothing is written to disk: the test driver only pretends this directory exists.
    _sub(_sub(pool, "target"), "path", f"/var/lib/libvirt/images/{pool_name}")
    for name in base_volumes:
        vol = _sub(pool, "volume", type="file")
        _sub(vol, "name", name)
        _sub(vol, "capacity", "10", unit="GiB")
        _sub(vol, "allocation", "0")
        _sub(_sub(vol, "target"), "format", type="qcow2")
    return _to_str(root)


# Its name starts with "test_"; keep pytest from collecting it wherever it is imported.
test_node_xml.__test__ = False  # type: ignore[attr-defined]
