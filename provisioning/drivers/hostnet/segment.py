"""A tenant network's L2 segment on one host, and the namespace that is its gateway.

On the host: bridge `tnbr<VNI>` (MTU 1450) with `vx<VNI>` enslaved, a VXLAN device from the
host's underlay address; frames for unknown MACs are replicated to every peer host that has
nodes of the network (all-zero FDB entries, kept equal to the peer list: no multicast, no
EVPN). Beside it, the namespace `<prefix>tn-<VNI>`, joined to the bridge by a veth pair
(`tg<VNI>` on the bridge, `gw` inside): it holds the gateway address and 169.254.169.254,
so dnsmasq and the metadata proxy of one tenant never see another tenant's addresses, and
two tenants with one CIDR coexist. The gateway is distributed, as routers are in clouds
with a router on every host: each host's gateway has the same address and MAC
(`gateway_mac`), and neither it nor DHCP crosses the VXLAN (`LOCAL_ONLY`, an nftables table
of the host's bridges), so every guest is answered by its own host. The way out (egress,
forwarded ports) is `uplink`.

Every step checks what is there first, so running it again converges.
"""

from __future__ import annotations

import json

from provisioning.drivers.base import NetworkSpec
from provisioning.drivers.hostnet import uplink
from provisioning.drivers.hostnet.site import Site, run

VXLAN_PORT = "4789"
METADATA_ADDRESS = "169.254.169.254"
GATEWAY_PORT = "gw"
ZERO_MAC = "00:00:00:00:00:00"


# Bridged frames that stay on their host: DHCP, and anything from or to a gateway.
GATEWAY_OUI = "02:6b:33"  # locally administered
LOCAL_ONLY = f"""
table bridge k3s_portal
flush table bridge k3s_portal
table bridge k3s_portal {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    oifname "vx*" udp dport 67-68 drop
    iifname "vx*" udp dport 67-68 drop
    oifname "vx*" ether saddr & ff:ff:ff:00:00:00 == {GATEWAY_OUI}:00:00:00 drop
    iifname "vx*" ether saddr & ff:ff:ff:00:00:00 == {GATEWAY_OUI}:00:00:00 drop
  }}
}}
"""


def gateway_mac(vni: int) -> str:
    return GATEWAY_OUI + "".join(f":{b:02x}" for b in vni.to_bytes(3, "big"))


def vxlan_name(vni: int) -> str:
    return f"vx{vni}"


def gateway_link(vni: int) -> str:
    return f"tg{vni}"


def ensure(site: Site, spec: NetworkSpec) -> None:
    links = site.links()
    _ensure_bridge(site, spec, links)
    _keep_local(site)
    _ensure_vxlan(site, spec, links)
    _ensure_namespace(site, spec, links)
    uplink.ensure(site, spec, links)


def remove(site: Site, name: str, vni: int, bridge: str) -> None:
    """Everything `ensure` made, whichever parts are still there."""
    uplink.remove(site, vni, site.links())
    ns = site.tenant_ns(name)
    if ns in site.namespaces():
        run("ip", "netns", "del", ns)  # its veth pairs go with it
    for link in (vxlan_name(vni), gateway_link(vni), bridge):
        site.delete_link(link)


def _ensure_bridge(site: Site, spec: NetworkSpec, links: dict) -> None:
    if spec.bridge not in links:
        site.ip("link", "add", spec.bridge, "mtu", str(spec.mtu), "type", "bridge")
    site.ip("link", "set", spec.bridge, "mtu", str(spec.mtu), "up")


def _keep_local(site: Site) -> None:
    run(*site.in_host("nft", "-f", "-"), stdin=LOCAL_ONLY)


def _ensure_vxlan(site: Site, spec: NetworkSpec, links: dict) -> None:
    name = vxlan_name(spec.segment_id)
    current = links.get(name, {}).get("linkinfo", {}).get("info_data", {})
    if name in links and (current.get("id"), current.get("local")) != (
        spec.segment_id,
        spec.underlay,
    ):
        site.ip("link", "del", name)  # the host's underlay address changed
        links.pop(name)
    if spec.underlay is None:
        return  # a host without an underlay address keeps its segments to itself
    if name not in links:
        site.ip(
            "link", "add", name, "mtu", str(spec.mtu), "type", "vxlan", "id",
            str(spec.segment_id), "local", spec.underlay, "dstport", VXLAN_PORT,
        )  # fmt: skip
    site.ip("link", "set", name, "master", spec.bridge, "up")
    _sync_flood_list(site, name, set(spec.peers))


def _sync_flood_list(site: Site, vxlan: str, peers: set[str]) -> None:
    entries = json.loads(site.bridge("-j", "fdb", "show", "dev", vxlan) or "[]")
    current = {e["dst"] for e in entries if e.get("mac") == ZERO_MAC and "dst" in e}
    for peer in sorted(peers - current):
        site.bridge("fdb", "append", ZERO_MAC, "dev", vxlan, "dst", peer)
    for peer in sorted(current - peers):
        site.bridge("fdb", "del", ZERO_MAC, "dev", vxlan, "dst", peer)


def _ensure_namespace(site: Site, spec: NetworkSpec, links: dict) -> None:
    ns = site.tenant_ns(spec.name)
    if ns not in site.namespaces():
        run("ip", "netns", "add", ns)
    run("ip", "-n", ns, "link", "set", "dev", "lo", "up")
    port = gateway_link(spec.segment_id)
    if port not in links:
        site.ip(
            "link", "add", port, "mtu", str(spec.mtu), "type", "veth",
            "peer", "name", GATEWAY_PORT, "mtu", str(spec.mtu), "netns", ns,
        )  # fmt: skip
    site.ip("link", "set", port, "master", spec.bridge, "up")
    mac = gateway_mac(spec.segment_id)
    run("ip", "-n", ns, "link", "set", "dev", GATEWAY_PORT, "address", mac)
    run("ip", "-n", ns, "addr", "replace", f"{spec.gateway}/{spec.prefix}", "dev", GATEWAY_PORT)
    run("ip", "-n", ns, "addr", "replace", f"{METADATA_ADDRESS}/32", "dev", GATEWAY_PORT)
    run("ip", "-n", ns, "link", "set", GATEWAY_PORT, "up")
