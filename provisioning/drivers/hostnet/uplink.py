"""A tenant namespace's way out, when the network needs one: a veth pair to the host
(`te<VNI>` / `uplink`) with a /30 of the shared address space (RFC 6598) chosen by VNI.

- Egress: the tenant's (overlapping) addresses leave masqueraded as the namespace's transit
  address, and that leaves the host masqueraded as the host's own.
- Forwarded ports (`NetworkSpec.forwards`, a server node's Kubernetes API): the host
  DNATs `public address:port` to the namespace's transit address, and the namespace DNATs
  that to the node; replies return the same way. Without egress a guest can answer such a
  connection but never start one out.

The namespace's own tables are written whole (iptables-restore: it holds nothing else);
on the host the network has a chain of its own, `K3SP-<VNI>`, refilled each time.
"""

from __future__ import annotations

import ipaddress
import subprocess

from provisioning.drivers.base import NetworkSpec
from provisioning.drivers.hostnet.site import Site, in_ns, run

UPLINK_PORT = "uplink"
TRANSIT = ipaddress.ip_network("100.64.0.0/10")


def link_name(vni: int) -> str:
    return f"te{vni}"


def chain(vni: int) -> str:
    return f"K3SP-{vni}"


def transit(vni: int) -> tuple[str, str]:
    """(host end, namespace end) of the network's uplink."""
    base = int(TRANSIT.network_address) + 4 * (vni % (TRANSIT.num_addresses // 4))
    return str(ipaddress.ip_address(base + 1)), str(ipaddress.ip_address(base + 2))


def ensure(site: Site, spec: NetworkSpec, links: dict) -> None:
    if not (spec.egress or spec.forwards):
        remove(site, spec.segment_id, links)
        return
    ns = site.tenant_ns(spec.name)
    link = link_name(spec.segment_id)
    host_end, ns_end = transit(spec.segment_id)
    if link not in links:
        site.ip("link", "add", link, "type", "veth", "peer", "name", UPLINK_PORT, "netns", ns)
    site.ip("addr", "replace", f"{host_end}/30", "dev", link)
    site.ip("link", "set", link, "up")
    run("ip", "-n", ns, "addr", "replace", f"{ns_end}/30", "dev", UPLINK_PORT)
    run("ip", "-n", ns, "link", "set", UPLINK_PORT, "up")
    run("ip", "-n", ns, "route", "replace", "default", "via", host_end)
    run(*in_ns(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"))
    run(*site.in_host("sysctl", "-qw", "net.ipv4.ip_forward=1"))
    run(*in_ns(ns, "iptables-restore"), stdin=namespace_tables(spec))
    _host_rules(site, spec)


def namespace_tables(spec: NetworkSpec) -> str:
    nat = [
        f"-A PREROUTING -i {UPLINK_PORT} -p tcp --dport {f.port} "
        f"-j DNAT --to-destination {f.address}:{f.target_port}"
        for f in spec.forwards
    ]
    if spec.egress:
        nat.append(f"-A POSTROUTING -o {UPLINK_PORT} -j MASQUERADE")
    # Without egress, connections may come in (forwards) but none may start out.
    forward = (
        [] if spec.egress else [f"-A FORWARD -o {UPLINK_PORT} -m conntrack --ctstate NEW -j DROP"]
    )
    return "\n".join(
        [
            "*nat",
            *(f":{c} ACCEPT [0:0]" for c in ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")),
            *nat,
            "COMMIT",
            "*filter",
            *(f":{c} ACCEPT [0:0]" for c in ("INPUT", "FORWARD", "OUTPUT")),
            *forward,
            "COMMIT",
            "",
        ]
    )


def _host_rules(site: Site, spec: NetworkSpec) -> None:
    iptables = site.in_host("iptables")
    vni = spec.segment_id
    _, ns_end = transit(vni)
    if not _has(iptables, "-S", chain(vni)):
        run(*iptables, "-t", "nat", "-N", chain(vni))
    run(*iptables, "-t", "nat", "-F", chain(vni))
    for forward in spec.forwards if spec.public_address else ():
        run(
            *iptables, "-t", "nat", "-A", chain(vni), "-d", str(spec.public_address),
            "-p", "tcp", "--dport", str(forward.port),
            "-j", "DNAT", "--to-destination", f"{ns_end}:{forward.port}",
        )  # fmt: skip
    for hook in ("PREROUTING", "OUTPUT"):  # from outside, and from the host itself
        if not _has(iptables, "-C", hook, "-j", chain(vni)):
            run(*iptables, "-t", "nat", "-A", hook, "-j", chain(vni))
    masquerade = _host_masquerade(vni)
    present = _has(iptables, "-C", "POSTROUTING", *masquerade)
    if spec.egress and not present:
        run(*iptables, "-t", "nat", "-A", "POSTROUTING", *masquerade)
    elif present and not spec.egress:
        run(*iptables, "-t", "nat", "-D", "POSTROUTING", *masquerade)


def remove(site: Site, vni: int, links: dict) -> None:
    if link_name(vni) in links:
        site.delete_link(link_name(vni))
    iptables = site.in_host("iptables")
    if _has(iptables, "-C", "POSTROUTING", *_host_masquerade(vni)):
        run(*iptables, "-t", "nat", "-D", "POSTROUTING", *_host_masquerade(vni))
    if _has(iptables, "-S", chain(vni)):
        for hook in ("PREROUTING", "OUTPUT"):
            if _has(iptables, "-C", hook, "-j", chain(vni)):
                run(*iptables, "-t", "nat", "-D", hook, "-j", chain(vni))
        run(*iptables, "-t", "nat", "-F", chain(vni))
        run(*iptables, "-t", "nat", "-X", chain(vni))


def _host_masquerade(vni: int) -> tuple[str, ...]:
    _, ns_end = transit(vni)
    comment = f"k3s-portal egress vni {vni}"
    return ("-s", f"{ns_end}/32", "-m", "comment", "--comment", comment, "-j", "MASQUERADE")


def _has(iptables: list[str], *query: str) -> bool:
    check = [*iptables, "-t", "nat", *query]
    return subprocess.run(check, capture_output=True, timeout=30).returncode == 0
