"""dnsmasq per tenant namespace, as OpenStack's DHCP agent runs it: static leases only (the
portal's IPAM decides every address), a hosts file re-read on SIGHUP so running guests keep
their leases, and its own lease file, which tells whether a MAC still holds a lease."""

from __future__ import annotations

import ipaddress
import os
import signal
from pathlib import Path

from provisioning.drivers.base import DhcpHost, NetworkSpec, PermanentDriverError
from provisioning.drivers.hostnet import processes
from provisioning.drivers.hostnet.segment import GATEWAY_PORT
from provisioning.drivers.hostnet.site import Site, in_ns, run

DEFAULT_LEASE_SECONDS = 3600


def files(site: Site, network: str) -> dict[str, Path]:
    root = site.state_dir(network)
    return {name: root / f"dnsmasq.{name}" for name in ("pid", "hosts", "leases", "log")}


def hosts_file(hosts: tuple[DhcpHost, ...]) -> str:
    return "".join(
        f"{h.mac},{h.ip},{h.name},{h.lease_seconds or DEFAULT_LEASE_SECONDS}\n" for h in hosts
    )


def ensure(site: Site, spec: NetworkSpec) -> None:
    paths = files(site, spec.name)
    wanted = hosts_file(spec.dhcp_hosts)
    changed = not paths["hosts"].exists() or paths["hosts"].read_text() != wanted
    if changed:
        staged = paths["hosts"].with_suffix(".new")
        staged.write_text(wanted)
        os.replace(staged, paths["hosts"])  # dnsmasq never reads half a file
    if processes.running(paths["pid"]) is None:
        _start(site, spec, paths)
    elif changed:
        processes.signal_process(paths["pid"], signal.SIGHUP)


def _start(site: Site, spec: NetworkSpec, paths: dict[str, Path]) -> None:
    subnet = ipaddress.ip_network(f"{spec.gateway}/{spec.prefix}", strict=False)
    paths["leases"].touch()
    run(
        *in_ns(site.tenant_ns(spec.name), "dnsmasq"),
        "--conf-file=/dev/null",
        f"--pid-file={paths['pid']}",
        f"--dhcp-hostsfile={paths['hosts']}",
        f"--dhcp-leasefile={paths['leases']}",
        f"--log-facility={paths['log']}",
        f"--interface={GATEWAY_PORT}",
        "--bind-interfaces",
        "--except-interface=lo",
        "--port=0",  # no DNS: DHCP only
        "--user=root",  # it rewrites its lease file in the portal's run directory
        "--dhcp-no-override",
        f"--dhcp-range={subnet.network_address},static,{subnet.netmask}",
        f"--dhcp-option=option:router,{spec.gateway}",
        f"--dhcp-option=option:mtu,{spec.mtu}",
    )
    if not processes.wait_for(paths["pid"]):
        raise PermanentDriverError("host_network", f"dnsmasq for {spec.name} did not start")


def stop(site: Site, network: str) -> None:
    paths = files(site, network)
    processes.stop(paths["pid"])
    for path in paths.values():
        path.unlink(missing_ok=True)


def leases(site: Site, network: str) -> tuple[str, ...]:
    """MACs with a lease in the network's dnsmasq (none when it is not running)."""
    paths = files(site, network)
    if processes.running(paths["pid"]) is None or not paths["leases"].exists():
        return ()
    macs = {line.split()[1] for line in paths["leases"].read_text().splitlines() if line.strip()}
    return tuple(sorted(macs))
