"""What the portal asks of a hypervisor: a Protocol, the specs it takes, the facts and errors it
returns. Nothing here knows about libvirt, so services and tests can type against it freely."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


def is_test_uri(uri: str) -> bool:
    """libvirt's test driver (test:///..., test+unix://...): no guests, no real host."""
    return uri.split(":", 1)[0].split("+", 1)[0] == "test"


class DriverError(Exception):
    """A hypervisor operation failed; `code` is stable and machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TransientDriverError(DriverError):
    """Retry later: the host was unreachable, busy or slow."""


class PermanentDriverError(DriverError):
    """Retrying will not help (bad config, missing volume, not enough memory, unsupported)."""


@dataclass(frozen=True)
class Capabilities:
    enforces_firewalls: bool
    dhcp_leases: bool
    volume_upload: bool


@dataclass(frozen=True)
class StoragePoolFacts:
    name: str
    capacity_bytes: int
    available_bytes: int


@dataclass(frozen=True)
class HostFacts:
    hostname: str
    vcpus: int
    memory_mib: int
    pools: tuple[StoragePoolFacts, ...]
    domain_names: tuple[str, ...]


@dataclass(frozen=True)
class VolumeSpec:
    pool: str
    name: str
    capacity_gib: int
    # Name of a base volume in the same pool; the new volume is a qcow2 overlay on top of it.
    backing_volume: str | None


@dataclass(frozen=True)
class NicSpec:
    network: str
    bridge: str
    mac: str
    ip: str
    nwfilter: str | None
    mtu: int = 1450


@dataclass(frozen=True)
class Virtualisation:
    """How a host virtualises: `virt_type` kvm or qemu (TCG); `cpu_mode` host-model,
    host-passthrough, custom (`cpu_model` names it) or none; `machine_type` blank = the
    hypervisor's default."""

    virt_type: str = "kvm"
    cpu_mode: str = "host-model"
    cpu_model: str = ""
    machine_type: str = ""


@dataclass(frozen=True)
class DomainSpec:
    name: str
    vcpus: int
    memory_mib: int
    disk_pool: str
    disk_volume: str
    nics: tuple[NicSpec, ...]
    # Carries "ds=nocloud-net;s=<portal>/guest/<token>/" so cloud-init finds its seed.
    smbios_serial: str
    autostart: bool = True
    virtualisation: Virtualisation = Virtualisation()


@dataclass(frozen=True)
class DhcpHost:
    mac: str
    ip: str
    name: str
    # How long dnsmasq leases the address (None: its default, 1 h under libvirt).
    lease_seconds: int | None = None


@dataclass(frozen=True)
class PortForward:
    """`port` of the host's public address, forwarded to `address`:`target_port` inside."""

    port: int
    address: str
    target_port: int = 6443


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    bridge: str
    segment_id: int
    gateway: str
    prefix: int
    dhcp_hosts: tuple[DhcpHost, ...]
    mtu: int = 1450
    # The portal's id of the network: the metadata proxy names it in what it forwards.
    uuid: str = ""
    # This host's VXLAN source address (None: the segment stays on this host), and the
    # underlay addresses of the other hosts with nodes of this network.
    underlay: str | None = None
    peers: tuple[str, ...] = ()
    # NAT to the outside through the host (off unless the tenant turned it on).
    egress: bool = False
    # The host's public address and what of it is forwarded into this network.
    public_address: str | None = None
    forwards: tuple[PortForward, ...] = ()


@dataclass(frozen=True)
class FirewallRuleSpec:
    direction: str  # "ingress" | "egress"
    protocol: str  # "tcp" | "udp" | "icmp" | "all"
    port_min: int | None
    port_max: int | None
    cidr: str


@dataclass(frozen=True)
class NwfilterSpec:
    name: str
    network_cidr: str
    rules: tuple[FirewallRuleSpec, ...]


@dataclass(frozen=True)
class DomainState:
    name: str
    state: str  # "running" | "shutoff" | "paused" | "other"


class HypervisorDriver(Protocol):
    uri: str
    capabilities: Capabilities

    def host_facts(self) -> HostFacts: ...

    def virtualisation_defaults(self) -> Virtualisation: ...

    def list_domains(self, prefix: str) -> list[DomainState]: ...

    def domain_state(self, name: str) -> DomainState | None: ...

    def ensure_volume(self, spec: VolumeSpec) -> str: ...

    def delete_volume(self, pool: str, name: str) -> None: ...

    def volume_exists(self, pool: str, name: str) -> bool: ...

    def upload_volume(self, pool: str, name: str, path: str) -> None: ...

    def volume_sha256(self, pool: str, name: str) -> str | None: ...

    def volume_physical_bytes(self, pool: str, name: str) -> int | None: ...

    def ensure_domain(self, spec: DomainSpec) -> None: ...

    def start_domain(self, name: str) -> None: ...

    def stop_domain(self, name: str) -> None: ...

    def undefine_domain(self, name: str) -> None: ...

    def ensure_network(self, spec: NetworkSpec) -> None: ...

    def delete_network(self, name: str) -> None: ...

    def ensure_nwfilter(self, spec: NwfilterSpec) -> None: ...

    def delete_nwfilter(self, name: str) -> None: ...

    def dhcp_leases(self, network: str) -> tuple[str, ...]: ...

    def console_tail(self, name: str, lines: int) -> str: ...
