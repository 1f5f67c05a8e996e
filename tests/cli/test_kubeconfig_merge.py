"""k3sc.kubeconfig in-process: merging by name, current-context, removal, file mode."""

import stat
from typing import Any

import yaml

from k3sc import kubeconfig as kube


def issued(
    cluster: str, user: str = "alice", server: str = "https://10.0.0.4:6443"
) -> dict[str, Any]:
    """What the portal's kubeconfig endpoint answers (provisioning.pki.kubeconfig's shape)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server}}],
        "users": [{"name": user, "user": {"client-certificate-data": f"cert-{cluster}"}}],
        "contexts": [{"name": f"{cluster}-{user}", "context": {"cluster": cluster, "user": user}}],
        "current-context": f"{cluster}-{user}",
    }


FOREIGN: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "prod", "cluster": {"server": "https://prod:6443"}}],
    "users": [{"name": "alice", "user": {"token": "theirs"}}],
    "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "alice"}}],
    "current-context": "prod",
    "preferences": {"colors": True},
}


def test_renamed_per_cluster_and_role_so_two_clusters_never_share_a_user() -> None:
    web = kube.renamed(issued("web"), "web", "admin")
    api = kube.renamed(issued("api"), "api", "viewer")
    assert [u["name"] for u in web["users"] + api["users"]] == ["k3sc-web", "k3sc-api-viewer"]
    assert web["contexts"][0]["context"] == {"cluster": "k3sc-web", "user": "k3sc-web"}
    assert web["clusters"][0]["cluster"]["server"] == "https://10.0.0.4:6443"


def test_merge_keeps_foreign_entries_and_their_current_context() -> None:
    merged = kube.merge(FOREIGN, kube.renamed(issued("web"), "web", "admin"), switch=False)
    assert merged["current-context"] == "prod"
    assert [c["name"] for c in merged["contexts"]] == ["prod", "k3sc-web"]
    assert merged["users"][0] == FOREIGN["users"][0]  # the foreign "alice" is untouched
    assert merged["preferences"] == {"colors": True}


def test_merge_replaces_an_entry_of_the_same_name_in_place() -> None:
    first = kube.merge(FOREIGN, kube.renamed(issued("web"), "web", "admin"), switch=False)
    moved = issued("web", server="https://10.0.0.9:6443")
    again = kube.merge(first, kube.renamed(moved, "web", "admin"), switch=True)
    assert [c["name"] for c in again["clusters"]] == ["prod", "k3sc-web"]
    assert again["clusters"][1]["cluster"]["server"] == "https://10.0.0.9:6443"
    assert again["current-context"] == "k3sc-web"


def test_an_empty_file_gets_the_context_as_current() -> None:
    assert kube.merge({}, kube.renamed(issued("web"), "web", "admin"), False)[
        "current-context"
    ] == ("k3sc-web")


def test_remove_takes_only_the_clusters_own_entries() -> None:
    both = kube.merge(FOREIGN, kube.renamed(issued("web"), "web", "admin"), switch=True)
    both = kube.merge(both, kube.renamed(issued("web"), "web", "viewer"), switch=True)
    both = kube.merge(both, kube.renamed(issued("webx"), "webx", "admin"), switch=False)
    kept, removed = kube.remove(both, "web")
    assert removed == ["k3sc-web", "k3sc-web-viewer"]
    assert [c["name"] for c in kept["contexts"]] == ["prod", "k3sc-webx"]
    assert [u["name"] for u in kept["users"]] == ["alice", "k3sc-webx"]
    assert [c["name"] for c in kept["clusters"]] == ["prod", "k3sc-webx"]
    assert kept["current-context"] == ""  # it was ours


def test_save_writes_0600_and_merges_into_the_file(tmp_path) -> None:
    path = tmp_path / "kube" / "config"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(FOREIGN))
    path.chmod(0o644)
    context = kube.save(path, issued("web"), "web", "admin", merge_into=True, switch=False)
    assert context == "k3sc-web"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = yaml.safe_load(path.read_text())
    assert written["current-context"] == "prod" and len(written["contexts"]) == 2
    kube.save(path, issued("web"), "web", "admin", merge_into=False, switch=False)
    assert [c["name"] for c in yaml.safe_load(path.read_text())["contexts"]] == ["k3sc-web"]


def test_default_path_is_the_first_of_kubeconfig(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path}/a:{tmp_path}/b")
    assert kube.default_path() == tmp_path / "a"
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert kube.default_path() == tmp_path / ".kube" / "config"
