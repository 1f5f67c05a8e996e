"""The one module that imports libvirt: `LibvirtDriver` implements `HypervisorDriver`.

Every public method is idempotent (workers retry and redeliver) and raises only `DriverError`s.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

import libvirt

from provisioning.drivers import console
from provisioning.drivers import xml as lvxml
from provisioning.drivers.base import (
    Capabilities,
    DhcpHost,
    DomainSpec,
    DomainState,
    DriverError,
    HostFacts,
    NetworkSpec,
    NwfilterSpec,
    PermanentDriverError,
    StoragePoolFacts,
    TransientDriverError,
    Virtualisation,
    VolumeSpec,
)

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

# libvirt prints every error to stderr by default; here they are raised as DriverErrors instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

# Measured on libvirt 9.0: the test driver has no nwfilter API, no volume upload, no leases.
_TEST_CAPABILITIES = Capabilities(enforces_firewalls=False, dhcp_leases=False, volume_upload=False)
_FULL_CAPABILITIES = Capabilities(enforces_firewalls=True, dhcp_leases=True, volume_upload=True)

_TRANSIENT_CODES = {
    libvirt.VIR_ERR_NO_CONNECT: "unreachable",
    libvirt.VIR_ERR_INVALID_CONN: "unreachable",
    libvirt.VIR_ERR_RPC: "unreachable",
    libvirt.VIR_ERR_OPERATION_TIMEOUT: "timeout",
    libvirt.VIR_ERR_AGENT_UNRESPONSIVE: "timeout",
    libvirt.VIR_ERR_RESOURCE_BUSY: "busy",
}
_PERMANENT_CODES = {
    libvirt.VIR_ERR_NO_SUPPORT: "unsupported",
    libvirt.VIR_ERR_OPERATION_UNSUPPORTED: "unsupported",
    libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED: "unsupported",
    libvirt.VIR_ERR_CONFIG_UNSUPPORTED: "unsupported",
    libvirt.VIR_ERR_NO_STORAGE_VOL: "no_such_volume",
    libvirt.VIR_ERR_NO_STORAGE_POOL: "no_such_pool",
    libvirt.VIR_ERR_NO_DOMAIN: "no_such_domain",
    libvirt.VIR_ERR_NO_NETWORK: "no_such_network",
    libvirt.VIR_ERR_NO_NWFILTER: "no_such_nwfilter",
    libvirt.VIR_ERR_NO_MEMORY: "out_of_memory",
    libvirt.VIR_ERR_XML_ERROR: "invalid_config",
    libvirt.VIR_ERR_XML_DETAIL: "invalid_config",
    libvirt.VIR_ERR_XML_INVALID_SCHEMA: "invalid_config",
}

_DOMAIN_STATES = {
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "running",  # running, just idle on I/O
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
}


def _translate_error(err: libvirt.libvirtError) -> DriverError:
    """Map a libvirt error to a Transient (retry) or Permanent (give up) DriverError."""
    code = err.get_error_code()
    message = err.get_error_message() or str(err)
    if code in _TRANSIENT_CODES:
        return TransientDriverError(_TRANSIENT_CODES[code], message)
    # A refused or dropped socket surfaces as a system error raised by the RPC layer.
    if code == libvirt.VIR_ERR_SYSTEM_ERROR and err.get_error_domain() in (
        libvirt.VIR_FROM_RPC,
        libvirt.VIR_FROM_REMOTE,
    ):
        return TransientDriverError("unreachable", message)
    if code in _PERMANENT_CODES:
        return PermanentDriverError(_PERMANENT_CODES[code], message)
    # QEMU reports a host without enough free RAM only in the text of a generic error.
    if "cannot allocate memory" in message.lower():
        return PermanentDriverError("out_of_memory", message)
    return PermanentDriverError("libvirt_error", message)


def _translated(method: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except libvirt.libvirtError as err:
            raise _translate_error(err) from err

    return wrapper


@contextmanager
def _missing_ok(*codes: int) -> Iterator[None]:
    """Treat "no such <object>" (error `codes`) as done; anything else still raises."""
    try:
        yield
    except libvirt.libvirtError as err:
        if err.get_error_code() not in codes:
            raise


def _find(lookup: Callable[[str], T], name: str, missing_code: int) -> T | None:
    with _missing_ok(missing_code):
        return lookup(name)
    return None


def _converge(done: Callable[[], bool], act: Callable[[], object]) -> None:
    """Run `act` unless `done()`; its failure is fine when a concurrent worker got there first."""
    if done():
        return
    try:
        act()
    except libvirt.libvirtError:
        if not done():
            raise


_connections: dict[str, libvirt.virConnect] = {}
_connections_lock = threading.Lock()


def _is_alive(conn: libvirt.virConnect) -> bool:
    try:
        return bool(conn.isAlive())
    except libvirt.libvirtError:
        return False  # closed: the handle is no longer valid


def _open(uri: str) -> libvirt.virConnect:
    """One connection per URI per process, reopened when it dropped.

    For test:// URIs this is also what keeps the test driver's state alive for the process.
    """
    with _connections_lock:
        conn = _connections.get(uri)
        if conn is None or not _is_alive(conn):
            conn = libvirt.open(uri)
            _connections[uri] = conn
        return conn


def forget_connections(uris: Iterable[str]) -> None:
    """Close and drop this process's connections to `uris`, as a restarted worker has none.

    For a test:// URI the next open starts from its node file again: every domain is gone.
    """
    with _connections_lock:
        for uri in uris:
            conn = _connections.pop(uri, None)
            if conn is not None:
                with _missing_ok(libvirt.VIR_ERR_INVALID_CONN):  # already closed
                    conn.close()


def _domain_state(dom: libvirt.virDomain) -> DomainState:
    return DomainState(name=dom.name(), state=_DOMAIN_STATES.get(dom.state()[0], "other"))


class LibvirtDriver:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.is_test = uri.split(":", 1)[0].split("+", 1)[0] == "test"
        self.capabilities = _TEST_CAPABILITIES if self.is_test else _FULL_CAPABILITIES

    def __repr__(self) -> str:
        return f"LibvirtDriver({self.uri!r})"

    def _connection(self) -> libvirt.virConnect:
        return _open(self.uri)

    @_translated
    def host_facts(self) -> HostFacts:
        conn = self._connection()
        _model, memory_mib, cpus, *_rest = conn.getInfo()
        pools = []
        for pool in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
            _state, capacity, _allocation, available = pool.info()
            pools.append(StoragePoolFacts(pool.name(), capacity, available))
        return HostFacts(
            hostname=conn.getHostname(),
            vcpus=cpus,
            memory_mib=memory_mib,
            pools=tuple(sorted(pools, key=lambda p: p.name)),
            domain_names=tuple(sorted(dom.name() for dom in conn.listAllDomains(0))),
        )

    @_translated
    def virtualisation_defaults(self) -> Virtualisation:
        """What this host offers: KVM with host-model where libvirt says it is usable,
        else QEMU's software emulation (TCG) with QEMU's default CPU."""
        if self.is_test:
            return Virtualisation(virt_type="test", cpu_mode="none")
        try:
            caps = self._connection().getDomainCapabilities(None, None, None, "kvm")
        except libvirt.libvirtError:
            caps = None  # no KVM at all
        if caps is not None and lvxml.kvm_usable(caps):
            return Virtualisation(virt_type="kvm", cpu_mode="host-model")
        return Virtualisation(virt_type="qemu", cpu_mode="none")

    @_translated
    def list_domains(self, prefix: str) -> list[DomainState]:
        states = []
        for dom in self._connection().listAllDomains(0):
            if dom.name().startswith(prefix):
                with _missing_ok(libvirt.VIR_ERR_NO_DOMAIN):  # undefined while listing
                    states.append(_domain_state(dom))
        return sorted(states, key=lambda s: s.name)

    @_translated
    def domain_state(self, name: str) -> DomainState | None:
        with _missing_ok(libvirt.VIR_ERR_NO_DOMAIN):
            return _domain_state(self._connection().lookupByName(name))
        return None

    @_translated
    def ensure_volume(self, spec: VolumeSpec) -> str:
        pool = self._connection().storagePoolLookupByName(spec.pool)
        existing = _find(pool.storageVolLookupByName, spec.name, libvirt.VIR_ERR_NO_STORAGE_VOL)
        if existing is not None:
            return str(existing.path())
        backing = None
        if spec.backing_volume is not None:
            base = pool.storageVolLookupByName(spec.backing_volume)
            backing = lvxml.volume_target(base.XMLDesc(0))
        try:
            vol = pool.createXML(lvxml.volume_xml(spec, backing), 0)
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_STORAGE_VOL_EXIST:
                raise
            vol = pool.storageVolLookupByName(spec.name)  # a concurrent worker won the race
        return str(vol.path())

    @_translated
    def delete_volume(self, pool: str, name: str) -> None:
        # No pool: nothing of it is left to delete either.
        with _missing_ok(libvirt.VIR_ERR_NO_STORAGE_VOL, libvirt.VIR_ERR_NO_STORAGE_POOL):
            self._connection().storagePoolLookupByName(pool).storageVolLookupByName(name).delete(0)

    @_translated
    def upload_volume(self, pool: str, name: str, path: str) -> None:
        """Replace volume `name` with the file at `path` through libvirt's upload stream
        (works for remote hosts too: the bytes travel over the libvirt connection)."""
        if not self.capabilities.volume_upload:
            raise PermanentDriverError("unsupported", "this driver has no volume upload")
        conn = self._connection()
        storage = conn.storagePoolLookupByName(pool)
        old = _find(storage.storageVolLookupByName, name, libvirt.VIR_ERR_NO_STORAGE_VOL)
        if old is not None:
            old.delete(0)
        size = os.path.getsize(path)
        vol = storage.createXML(lvxml.upload_volume_xml(name, size), 0)
        stream = conn.newStream(0)
        try:
            vol.upload(stream, 0, size, 0)
            with open(path, "rb") as source:  # sendAll aborts the stream if reading fails
                stream.sendAll(lambda _stream, count, file: file.read(count), source)
            stream.finish()
        except (OSError, libvirt.libvirtError):
            vol.delete(0)  # never leave half an image under the base image's name
            raise
        storage.refresh(0)  # libvirt re-reads the uploaded image's own header

    @_translated
    def volume_sha256(self, pool: str, name: str) -> str | None:
        """The SHA-256 of the volume's bytes, read back through the download stream."""
        if not self.capabilities.volume_upload:
            return None
        conn = self._connection()
        lookup = conn.storagePoolLookupByName(pool).storageVolLookupByName
        vol = _find(lookup, name, libvirt.VIR_ERR_NO_STORAGE_VOL)
        if vol is None:
            return None
        digest = hashlib.sha256()
        stream = conn.newStream(0)
        vol.download(stream, 0, 0, 0)
        stream.recvAll(lambda _stream, data, sink: sink.update(data), digest)
        stream.finish()
        return digest.hexdigest()

    @_translated
    def volume_physical_bytes(self, pool: str, name: str) -> int | None:
        """The size of the volume's file on the host (what an upload of that file leaves),
        or None when there is no such volume. A metadata lookup: nothing is read."""
        lookup = self._connection().storagePoolLookupByName(pool).storageVolLookupByName
        vol = _find(lookup, name, libvirt.VIR_ERR_NO_STORAGE_VOL)
        if vol is None:
            return None
        if self.is_test:  # no infoFlags there: its allocation stands in
            return int(vol.info()[2])
        _type, _capacity, physical = vol.infoFlags(libvirt.VIR_STORAGE_VOL_GET_PHYSICAL)
        return int(physical)

    @_translated
    def volume_exists(self, pool: str, name: str) -> bool:
        lookup = self._connection().storagePoolLookupByName(pool).storageVolLookupByName
        return _find(lookup, name, libvirt.VIR_ERR_NO_STORAGE_VOL) is not None

    @_translated
    def ensure_domain(self, spec: DomainSpec) -> None:
        conn = self._connection()
        existing = _find(conn.lookupByName, spec.name, libvirt.VIR_ERR_NO_DOMAIN)
        # libvirt refuses to redefine a name under a new UUID, so keep the existing one.
        uuid = existing.UUIDString() if existing is not None else None
        dom = conn.defineXML(lvxml.domain_xml(spec, self.is_test, uuid))
        dom.setAutostart(int(spec.autostart))

    @_translated
    def start_domain(self, name: str) -> None:
        dom = self._connection().lookupByName(name)
        _converge(lambda: bool(dom.isActive()), dom.create)

    @_translated
    def stop_domain(self, name: str) -> None:
        with _missing_ok(libvirt.VIR_ERR_NO_DOMAIN):
            dom = self._connection().lookupByName(name)
            _converge(lambda: not dom.isActive(), dom.destroy)

    @_translated
    def undefine_domain(self, name: str) -> None:
        with _missing_ok(libvirt.VIR_ERR_NO_DOMAIN):
            dom = self._connection().lookupByName(name)
            _converge(lambda: not dom.isActive(), dom.destroy)
            dom.undefineFlags(
                libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
            )

    @_translated
    def ensure_network(self, spec: NetworkSpec) -> None:
        conn = self._connection()
        net = _find(conn.networkLookupByName, spec.name, libvirt.VIR_ERR_NO_NETWORK)
        if net is None:
            net = conn.networkDefineXML(lvxml.network_xml(spec))
        else:
            net = _reconcile_network(conn, net, spec)
        _converge(lambda: bool(net.isActive()), net.create)
        net.setAutostart(1)

    @_translated
    def delete_network(self, name: str) -> None:
        with _missing_ok(libvirt.VIR_ERR_NO_NETWORK):
            net = self._connection().networkLookupByName(name)
            _converge(lambda: not net.isActive(), net.destroy)
            net.undefine()

    @_translated
    def ensure_nwfilter(self, spec: NwfilterSpec) -> None:
        if not self.capabilities.enforces_firewalls:
            raise PermanentDriverError("unsupported", f"{self.uri} cannot enforce firewalls")
        conn = self._connection()
        existing = _find(conn.nwfilterLookupByName, spec.name, libvirt.VIR_ERR_NO_NWFILTER)
        uuid = existing.UUIDString() if existing is not None else None
        # Redefining a filter makes libvirt re-apply it to every running NIC that uses it.
        conn.nwfilterDefineXML(lvxml.nwfilter_xml(spec, uuid))

    @_translated
    def delete_nwfilter(self, name: str) -> None:
        if not self.capabilities.enforces_firewalls:
            return  # nothing can have been defined there, so it is already gone
        try:
            with _missing_ok(libvirt.VIR_ERR_NO_NWFILTER):
                self._connection().nwfilterLookupByName(name).undefine()
        except libvirt.libvirtError as err:
            # "nwfilter is in use": a domain being deleted still holds it; try again soon.
            if err.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID:
                raise TransientDriverError("in_use", err.get_error_message() or "") from err
            raise

    @_translated
    def dhcp_leases(self, network: str) -> tuple[str, ...]:
        """The MACs holding a DHCP lease in `network` here (none when it is not running)."""
        if not self.capabilities.dhcp_leases:
            raise PermanentDriverError("unsupported", f"{self.uri} reports no DHCP leases")
        net = _find(self._connection().networkLookupByName, network, libvirt.VIR_ERR_NO_NETWORK)
        if net is None or not net.isActive():
            return ()
        return tuple(sorted({lease["mac"] for lease in net.DHCPLeases()}))

    @_translated
    def console_tail(self, name: str, lines: int) -> str:
        """The last lines of the domain's serial console log, or why there are none."""
        if self.is_test:
            return "no console log: libvirt's test driver runs no guest"
        host = urlsplit(self.uri).hostname
        if host:
            return f"no console log: it is on {host}; its host agent reads it there"
        dom = _find(self._connection().lookupByName, name, libvirt.VIR_ERR_NO_DOMAIN)
        path = lvxml.console_log_of(dom.XMLDesc(0)) if dom is not None else None
        if path is None:
            return "no console log: the domain is gone or logs no console"
        return console.tail(path, lines)

    # Host setup used by ops and the libvirtd test tier; not part of HypervisorDriver.

    @_translated
    def ensure_dir_pool(self, name: str, path: str) -> None:
        conn = self._connection()
        pool = _find(conn.storagePoolLookupByName, name, libvirt.VIR_ERR_NO_STORAGE_POOL)
        if pool is None:
            pool = conn.storagePoolDefineXML(lvxml.dir_pool_xml(name, path), 0)
            pool.build(0)  # creates the directory
        if not pool.isActive():
            pool.create(0)
        pool.setAutostart(1)

    @_translated
    def delete_pool(self, name: str) -> None:
        """Forget the pool; its directory and any volumes left in it stay on disk."""
        with _missing_ok(libvirt.VIR_ERR_NO_STORAGE_POOL):
            pool = self._connection().storagePoolLookupByName(name)
            _converge(lambda: not pool.isActive(), pool.destroy)
            pool.undefine()


def _reconcile_network(
    conn: libvirt.virConnect, net: libvirt.virNetwork, spec: NetworkSpec
) -> libvirt.virNetwork:
    """Bring a defined network to `spec`; returns the network object to (re)start."""
    current = lvxml.network_spec_from_xml(net.XMLDesc(0))
    if replace(current, dhcp_hosts=spec.dhcp_hosts) == spec:
        _sync_dhcp_hosts(net, current.dhcp_hosts, spec.dhcp_hosts)
        return net
    # Bridge, addressing or MTU changed: only a restart applies that. Stop first, so the new
    # definition replaces the old one at once (the test driver never swaps in a definition
    # staged while the network was running).
    _converge(lambda: not net.isActive(), net.destroy)
    return conn.networkDefineXML(lvxml.network_xml(spec, net.UUIDString()))


def _sync_dhcp_hosts(
    net: libvirt.virNetwork, current: tuple[DhcpHost, ...], desired: tuple[DhcpHost, ...]
) -> None:
    """Add/remove static leases in place: restarting the network would cut off running nodes."""
    flags = libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG
    if net.isActive():
        flags |= libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE
    changes = [(libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, h) for h in current if h not in desired]
    changes += [
        (libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, h) for h in desired if h not in current
    ]
    for command, host in changes:
        try:
            net.update(
                command,
                libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST,
                -1,
                lvxml.dhcp_host_xml(host),
                flags,
            )
        except libvirt.libvirtError as err:
            # "there is an existing dhcp host entry" / "couldn't locate a matching dhcp host
            # entry" (VIR_ERR_OPERATION_INVALID): done, when the entry is as wanted.
            if err.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:
                raise
            now = lvxml.network_spec_from_xml(net.XMLDesc(0)).dhcp_hosts
            if (host in now) != (command == libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST):
                raise
