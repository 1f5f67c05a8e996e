"""The guest's seed: node tokens, the SMBIOS serial, and the NoCloud documents.

A node's token is derived (HMAC of the node's id under SECRET_KEY), so the worker can put
it in the domain's SMBIOS serial without storing it; only its SHA-256 digest is stored,
and clearing the digest revokes it when the node is deleted. A node keeps the token it was
given across a rotation of SECRET_KEY: it is re-derived under whichever key (the current
one or one of SECRET_KEY_FALLBACKS) gave the stored digest, and the seed hands the agent
the very token it was fetched with.

The seed's secrets (the join token, the cluster's CA keys) are served only while the node
is being provisioned; afterwards user-data is gone (410).
"""

import hashlib
import hmac
import json
import shlex
from pathlib import Path

import yaml
from django.conf import settings
from django.template.loader import render_to_string

from provisioning import addresses, k3s_flags, steps
from provisioning.models import Cluster, Node

# Where guests report their steps (provisioning.guest_views.PhoneHomeView), and once
# running their heartbeats (HeartbeatView).
PHONE_HOME_PATH = "/api/v1/guest/phone-home"
HEARTBEAT_PATH = "/api/v1/guest/heartbeat"
# The agent starts this timer once K3s is up: a heartbeat every HEARTBEAT_SECONDS.
HEARTBEAT_UNITS = {
    "k3s-portal-heartbeat.service": (
        "[Unit]\nDescription=Heartbeat to the k3s portal\n\n"
        "[Service]\nType=oneshot\nExecStart=/usr/local/sbin/k3s-portal-agent heartbeat\n"
    ),
    "k3s-portal-heartbeat.timer": (
        "[Unit]\nDescription=Heartbeat to the k3s portal every {seconds} s\n\n"
        "[Timer]\nOnActiveSec=0\nOnUnitActiveSec={seconds}s\nAccuracySec=1s\n\n"
        "[Install]\nWantedBy=timers.target\n"
    ),
}


def node_token(node: Node) -> str:
    """The node's token: under the key its stored digest was made with, else the current."""
    tokens = [
        hmac.new(key.encode(), f"guest:{node.uuid}".encode(), hashlib.sha256).hexdigest()
        for key in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)
    ]
    return next((t for t in tokens if token_digest(t) == node.token_digest), tokens[0])


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def seed_url(node: Node) -> str:
    """At the metadata address: the proxy in the node's network forwards to the portal."""
    return f"{settings.METADATA_URL}/guest/{node_token(node)}/"


def redacted(text: str, node: Node) -> str:
    """`text` (e.g. a serial console shown to the customer) without the node's token: it
    opens the seed, which holds the join token and the cluster's CA keys."""
    return text.replace(node_token(node), "<node token>")


def smbios_serial(node: Node) -> str:
    """cloud-init's NoCloud-net datasource reads its seed URL from the SMBIOS serial."""
    return f"ds=nocloud-net;s={seed_url(node)}"


def node_for_token(token: str, secrets: bool = False) -> Node | None:
    """The token's node; with its cluster's CA keys and join token only when `secrets`
    (each is decrypted on load, and only the user-data reads them)."""
    if not token:
        return None
    nodes = Node.objects.defer("hypervisor__credentials")  # no guest's answer reads them
    if not secrets:
        nodes = nodes.defer(*Cluster.pki_fields_from("cluster"))
    return (
        nodes.select_related(
            "cluster__network",
            "pool__size",
            "cluster__k3s_version",
            "k3s_version",  # a heartbeat's answer compares it
            "port",
            "hypervisor",
        )
        .filter(token_digest=token_digest(token))
        .exclude(token_digest="")
        .first()
    )


def meta_data(node: Node) -> str:
    return f"instance-id: {node.uuid}\nlocal-hostname: {node.name}\n"


def network_config(node: Node) -> str:
    network = node.cluster.network
    prefix = network.cidr.split("/")[1]
    return render_to_string(
        "provisioning/guest/network-config.yaml",
        {
            "mac": addresses.mac_of(node),
            "address": f"{addresses.address_of(node)}/{prefix}",
            "gateway": network.gateway,
        },
    )


AGENT_SCRIPT = (Path(__file__).parent / "guest_agent.sh").read_text()
RBAC_MANIFEST = """\
# Groups of the portal's kubeconfig certificates (O=portal:admin / O=portal:viewer).
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: portal-admins}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "portal:admin"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: portal-viewers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "portal:viewer"}]
"""
TLS_DIR = "/var/lib/rancher/k3s/server/tls"
MANIFESTS = "/var/lib/rancher/k3s/server/manifests"


def _file(path: str, content: str, mode: str = "0600") -> dict[str, str]:
    return {"path": path, "permissions": mode, "content": content}


def _public_address(node: Node) -> str:
    hypervisor = node.hypervisor
    if node.api_port is None or hypervisor is None:
        return ""
    return hypervisor.public_address or ""


def user_data(node: Node, token: str) -> str:
    """#cloud-config: the agent, its settings (`token`: the one the seed was fetched with),
    and on the server the CAs and RBAC."""
    cluster = node.cluster
    server = cluster.nodes.filter(is_server=True).first()
    phone_home = settings.METADATA_URL + PHONE_HOME_PATH
    interval = settings.HEARTBEAT_SECONDS
    env = {
        "PHONE_HOME_URL": phone_home,
        "HEARTBEAT_URL": settings.METADATA_URL + HEARTBEAT_PATH,
        "NODE_TOKEN": token,
        "NODE_NAME": node.name,
        "IS_SERVER": "1" if node.is_server else "0",
        "K3S_SERVER_URL": f"https://{addresses.address_of(server)}:6443" if server else "",
        "K3S_JOIN_TOKEN": cluster.join_token,
        "K3S_VERSION": node.version.version,
        # The public address kubectl reaches a forwarded API at: in the server's certificate.
        "K3S_TLS_SAN": _public_address(node),
        "K3S_ARGS": k3s_flags.k3s_args(
            node.pool.labels, node.pool.taints, cluster.cni, node.is_server
        ),
    }
    files = [
        _file(
            "/etc/k3s-portal/agent.env", "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items())
        ),
        _file("/usr/local/sbin/k3s-portal-agent", AGENT_SCRIPT, "0755"),
        *(
            _file(f"/etc/systemd/system/{name}", unit.format(seconds=interval), "0644")
            for name, unit in HEARTBEAT_UNITS.items()
        ),
    ]
    if node.is_server:
        files += [
            _file(f"{TLS_DIR}/server-ca.crt", cluster.server_ca_cert, "0644"),
            _file(f"{TLS_DIR}/server-ca.key", cluster.server_ca_key),
            _file(f"{TLS_DIR}/client-ca.crt", cluster.client_ca_cert, "0644"),
            _file(f"{TLS_DIR}/client-ca.key", cluster.client_ca_key),
            _file(f"{MANIFESTS}/portal-rbac.yaml", RBAC_MANIFEST, "0644"),
        ]
        if cluster.cni == k3s_flags.Cni.CILIUM:
            files.append(_file(f"{MANIFESTS}/cilium.yaml", k3s_flags.CILIUM_MANIFEST, "0644"))
    first = steps.performed_by(steps.Performer.GUEST)[0].name
    started = json.dumps({"token": token, "step": first, "state": "started"})
    document = {
        "hostname": node.name,
        # bootcmd runs first, before the files are written: report the first guest step's
        # start inline (the agent script reports everything after it).
        "bootcmd": [
            [
                "curl",
                "-s",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "--data",
                started,
                phone_home,
            ],
        ],
        "write_files": files,
        "runcmd": [["/usr/local/sbin/k3s-portal-agent"]],
    }
    return "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False, width=1000)
