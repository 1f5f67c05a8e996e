"""The guest side of a launch: node tokens, the cloud-init seed, and phone-home reports.

A node's token is derived (HMAC of the node's id under SECRET_KEY), so the worker can put
it in the domain's SMBIOS serial without storing it; only its SHA-256 digest is stored,
and clearing the digest revokes it when the node is deleted.
"""

import hashlib
import hmac
import json
import shlex
from pathlib import Path

import yaml
from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from networking import ipam
from portal import secrets
from provisioning import pipeline
from provisioning.models import Node, NodeStep
from provisioning.states import GUEST_STEPS, STEPS, NodeStatus, Step


class NotReady(Exception):
    """The step may not start yet (an agent waits for the server); try again shortly."""


class IllegalReport(Exception):
    """A report that does not follow the node's steps."""


def node_token(node: Node) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"guest:{node.uuid}".encode(), hashlib.sha256
    ).hexdigest()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def seed_url(node: Node) -> str:
    return f"{settings.PORTAL_URL}/guest/{node_token(node)}/"


def smbios_serial(node: Node) -> str:
    """cloud-init's NoCloud-net datasource reads its seed URL from the SMBIOS serial."""
    return f"ds=nocloud-net;s={seed_url(node)}"


def node_for_token(token: str) -> Node | None:
    if not token:
        return None
    return (
        Node.objects.select_related("cluster", "pool__size", "cluster__k3s_version")
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
            "mac": ipam.mac_for(node),
            "address": f"{ipam.address_of(node)}/{prefix}",
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


def _file(path: str, content: str, mode: str = "0600") -> dict[str, str]:
    return {"path": path, "permissions": mode, "content": content}


def user_data(node: Node) -> str:
    """#cloud-config: the agent, its settings, and on the server the CAs and RBAC."""
    cluster = node.cluster
    server = cluster.nodes.filter(is_server=True).first()
    phone_home = f"{settings.PORTAL_URL}/api/v1/guest/phone-home"
    token = node_token(node)
    env = {
        "PHONE_HOME_URL": phone_home,
        "NODE_TOKEN": token,
        "NODE_NAME": node.name,
        "IS_SERVER": "1" if node.is_server else "0",
        "K3S_SERVER_URL": f"https://{ipam.address_of(server)}:6443" if server else "",
        "K3S_JOIN_TOKEN": secrets.decrypt(cluster.join_token_encrypted),
        "K3S_VERSION": cluster.k3s_version.version,
    }
    files = [
        _file(
            "/etc/k3s-portal/agent.env", "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items())
        ),
        _file("/usr/local/sbin/k3s-portal-agent", AGENT_SCRIPT, "0755"),
    ]
    if node.is_server:
        files += [
            _file(f"{TLS_DIR}/server-ca.crt", cluster.server_ca_cert, "0644"),
            _file(f"{TLS_DIR}/server-ca.key", secrets.decrypt(cluster.server_ca_key_encrypted)),
            _file(f"{TLS_DIR}/client-ca.crt", cluster.client_ca_cert, "0644"),
            _file(f"{TLS_DIR}/client-ca.key", secrets.decrypt(cluster.client_ca_key_encrypted)),
            _file("/var/lib/rancher/k3s/server/manifests/portal-rbac.yaml", RBAC_MANIFEST, "0644"),
        ]
    started = json.dumps({"token": token, "step": "cloud_init", "state": "started"})
    document = {
        "hostname": node.name,
        # bootcmd runs first, before the files are written: report cloud-init's start inline.
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


def _previous(step: str) -> str:
    return STEPS[STEPS.index(Step(step)) - 1]


@transaction.atomic
def report(node: Node, step: str, state: str, message: str = "") -> None:
    """Apply a guest's report. Repeats are accepted and change nothing (idempotent)."""
    if step not in GUEST_STEPS or state not in ("started", "done", "failed"):
        raise IllegalReport(f"unknown step or state: {step}/{state}")
    if node.status != NodeStatus.PROVISIONING:
        raise IllegalReport(f"node is {node.status}, not provisioning")
    rows = {row.step: row for row in NodeStep.objects.filter(node=node)}
    if rows[_previous(step)].finished_at is None:
        raise IllegalReport(f"{step} cannot start before {_previous(step)} is done")
    current = rows[step]
    if state == "failed":
        pipeline.fail_node(node, step, f"{step}_failed", message or f"The guest failed at {step}.")
        return
    if state == "started":
        if step == Step.LAUNCH_K3S and not node.is_server and not _server_ready(node):
            raise NotReady("the server node is not Ready yet")
        pipeline.step_started(node, step)
        return
    if current.started_at is None:
        raise IllegalReport(f"{step} cannot be done before it started")
    pipeline.step_done(node, step)
    if step == Step.LAUNCH_K3S:
        pipeline.node_ready(node, timezone.now())


def _server_ready(node: Node) -> bool:
    return Node.objects.filter(
        cluster_id=node.cluster_id, is_server=True, status=NodeStatus.RUNNING
    ).exists()
