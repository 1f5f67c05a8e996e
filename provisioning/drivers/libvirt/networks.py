"""Tenant networks as libvirt networks (the test driver's kind): a running one is brought
to its spec in place, DHCP host entries added and removed one by one (idempotent), so
running guests keep their leases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import libvirt

from provisioning.drivers import xml as lvxml
from provisioning.drivers.base import (
    DhcpHost,
    NetworkSpec,
)
from provisioning.drivers.libvirt.calls import converge, find, missing_ok


class TenantNetworks(Protocol):
    def ensure_network(self, spec: NetworkSpec) -> None: ...

    def delete_network(self, name: str) -> None: ...

    def dhcp_leases(self, name: str) -> tuple[str, ...]: ...


class LibvirtNetworks:
    def __init__(self, connection: Callable[[], libvirt.virConnect]) -> None:
        self._connection = connection

    def ensure_network(self, spec: NetworkSpec) -> None:
        conn = self._connection()
        net = find(conn.networkLookupByName, spec.name, libvirt.VIR_ERR_NO_NETWORK)
        if net is None:
            net = conn.networkDefineXML(lvxml.network_xml(spec))
        else:
            net = reconcile_network(conn, net, spec)
        converge(lambda: bool(net.isActive()), net.create)
        net.setAutostart(1)

    def delete_network(self, name: str) -> None:
        with missing_ok(libvirt.VIR_ERR_NO_NETWORK):
            net = self._connection().networkLookupByName(name)
            converge(lambda: not net.isActive(), net.destroy)
            net.undefine()

    def dhcp_leases(self, name: str) -> tuple[str, ...]:
        net = find(self._connection().networkLookupByName, name, libvirt.VIR_ERR_NO_NETWORK)
        if net is None or not net.isActive():
            return ()
        return tuple(sorted({lease["mac"] for lease in net.DHCPLeases()}))


def reconcile_network(
    conn: libvirt.virConnect, net: libvirt.virNetwork, spec: NetworkSpec
) -> libvirt.virNetwork:
    """Bring a defined network to `spec`; returns the network object to (re)start."""
    current = lvxml.network_spec_from_xml(net.XMLDesc(0))
    if replace(current, dhcp_hosts=spec.dhcp_hosts) == spec:
        sync_dhcp_hosts(net, current.dhcp_hosts, spec.dhcp_hosts)
        return net
    # Bridge, addressing or MTU changed: only a restart applies that. Stop first, so the new
    # definition replaces the old one at once (the test driver never swaps in a definition
    # staged while the network was running).
    converge(lambda: not net.isActive(), net.destroy)
    return conn.networkDefineXML(lvxml.network_xml(spec, net.UUIDString()))


def sync_dhcp_hosts(
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
