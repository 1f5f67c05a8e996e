"""Saving a cluster's kubeconfig the way kubectl reads it, next to what is already there.

The portal names its entries after the cluster and the user (`web`, `alice`, `web-alice`);
two clusters of one user would then share a user entry. So k3sc renames them per cluster
and role: cluster `k3sc-<cluster>`, context and user `k3sc-<cluster>` (admin) or
`k3sc-<cluster>-<role>`. Merging replaces entries of the same name and keeps every other
one; `current-context` changes only when asked to (or when the file had none).
"""

import enum
import os
from pathlib import Path
from typing import Any

import yaml

from k3sc.client import Client

SECTIONS = ("clusters", "users", "contexts")
PREFIX = "k3sc-"


def default_path() -> Path:
    """The file kubectl writes: the first of $KUBECONFIG, else ~/.kube/config."""
    paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return Path(paths[0]) if paths else Path.home() / ".kube" / "config"


def cluster_entry(cluster: str) -> str:
    return f"{PREFIX}{cluster}"


def context_name(cluster: str, role: str = "admin") -> str:
    return cluster_entry(cluster) if role == "admin" else f"{PREFIX}{cluster}-{role}"


def renamed(issued: dict[str, Any], cluster: str, role: str) -> dict[str, Any]:
    """The portal's one-cluster kubeconfig with k3sc's names."""
    context = context_name(cluster, role)
    entry = cluster_entry(cluster)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": entry, "cluster": issued["clusters"][0]["cluster"]}],
        "users": [{"name": context, "user": issued["users"][0]["user"]}],
        "contexts": [{"name": context, "context": {"cluster": entry, "user": context}}],
        "current-context": context,
    }


def merge(existing: dict[str, Any], incoming: dict[str, Any], switch: bool) -> dict[str, Any]:
    """`existing` with `incoming`'s entries added, same names replaced in place."""
    merged = {"apiVersion": "v1", "kind": "Config", **existing}
    for section in SECTIONS:
        entries = list(merged.get(section) or [])
        for new in incoming.get(section) or []:
            names = [entry.get("name") for entry in entries]
            if new["name"] in names:
                entries[names.index(new["name"])] = new
            else:
                entries.append(new)
        merged[section] = entries
    if switch or not merged.get("current-context"):
        merged["current-context"] = incoming["current-context"]
    return merged


def remove(existing: dict[str, Any], cluster: str) -> tuple[dict[str, Any], list[str]]:
    """`existing` without the cluster's entries: its cluster, the contexts on it and their
    users. Returns the new document and the contexts removed."""
    entry = cluster_entry(cluster)
    contexts = [
        c
        for c in existing.get("contexts") or []
        if (c.get("context") or {}).get("cluster") == entry
    ]
    names = {c["name"] for c in contexts}
    users = {(c.get("context") or {}).get("user") for c in contexts}
    kept = dict(existing)
    kept["contexts"] = [c for c in existing.get("contexts") or [] if c["name"] not in names]
    kept["users"] = [u for u in existing.get("users") or [] if u.get("name") not in users]
    kept["clusters"] = [c for c in existing.get("clusters") or [] if c.get("name") != entry]
    if existing.get("current-context") in names:
        kept["current-context"] = ""
    return kept, sorted(names)


def read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}


def write(path: Path, document: dict[str, Any]) -> None:
    """Replace the file in one step, readable by its owner alone (it holds a private key)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.k3sc-tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(document, out, sort_keys=False)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def save(
    path: Path, issued: dict[str, Any], cluster: str, role: str, *, merge_into: bool, switch: bool
) -> str:
    """Write the cluster's kubeconfig into `path`; returns the context's name."""
    incoming = renamed(issued, cluster, role)
    existing = read(path) if merge_into else {}
    write(path, merge(existing, incoming, switch))
    return str(incoming["current-context"])


class Role(enum.StrEnum):
    ADMIN = "admin"
    VIEWER = "viewer"


def fetch(client: Client, cluster_id: str, role: str, ttl: int | None) -> str:
    """The portal's YAML, a fresh client certificate each time."""
    params: dict[str, Any] = {"role": role}
    if ttl is not None:
        params["ttl"] = ttl
    return client.text(f"clusters/{cluster_id}/kubeconfig", **params)


def issue_and_save(
    client: Client,
    cluster: dict[str, Any],
    role: str,
    ttl: int | None,
    path: Path,
    *,
    merge_into: bool,
    switch: bool,
) -> str:
    issued = yaml.safe_load(fetch(client, cluster["id"], role, ttl))
    return save(path, issued, cluster["name"], role, merge_into=merge_into, switch=switch)
