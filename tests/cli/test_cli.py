"""k3sc against a real portal: login, output formats, launches followed live, kubeconfigs,
scaling, failures, networks and firewalls, errors with the portal's code."""

import json
import stat

import pytest
import yaml

from tests.cli.conftest import Cli, Launched, Portal

pytestmark = pytest.mark.portal

STEPS = ["import_image", "start_vm", "cloud_init", "fetch_deps", "launch_k3s"]


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_login_stores_the_token_for_the_owner_alone_then_whoami(cli: Cli) -> None:
    done = cli.run("login", "--url", cli.url, "--token", cli.token, logged_in=False)
    assert done.returncode == 0, done.stderr
    stored = cli.config_dir / "config.yaml"
    assert mode(stored) == 0o600 and mode(cli.config_dir) == 0o700
    assert yaml.safe_load(stored.read_text()) == {"url": cli.url, "token": cli.token}

    me = json.loads(cli.run("whoami", "-o", "json", logged_in=False).stdout)
    assert (me["username"], me["organisation"], me["url"]) == ("dev", "devorg", cli.url)
    assert "devorg" in cli.run("whoami", logged_in=False).stdout

    assert cli.run("logout", logged_in=False).returncode == 0
    assert not stored.exists()
    after = cli.run("whoami", logged_in=False)
    assert after.returncode == 1 and "k3sc login" in after.stderr


def test_a_bad_token_exits_1_with_not_authenticated(cli: Cli) -> None:
    done = cli.run("login", "--url", cli.url, "--token", "k3sp_wrong", logged_in=False)
    assert done.returncode == 1
    assert "not_authenticated" in done.stderr
    assert not (cli.config_dir / "config.yaml").exists()
    # The environment wins over a stored login.
    assert cli.run("login", "--url", cli.url, "--token", cli.token, logged_in=False).returncode == 0
    again = cli.run("cluster", "list", logged_in=False, K3SC_TOKEN="k3sp_wrong")
    assert again.returncode == 1 and "error: not_authenticated" in again.stderr


def test_an_unreachable_portal_exits_2(cli: Cli) -> None:
    done = cli.run("region", "list", K3SC_URL="http://127.0.0.1:9")
    assert done.returncode == 2 and "cannot reach the portal" in done.stderr


def test_create_wait_prints_every_step_of_every_node_until_running(launched: Launched) -> None:
    out = launched.done.stdout.splitlines()
    for node in ("shared-workers-0", "shared-workers-1"):
        for step in STEPS:
            assert any(f"done    [{step}] {node}:" in line for line in out), (node, step)
    assert any("Cluster running in" in line for line in out)
    assert out[-1] == "Cluster shared is running (2 nodes)."
    # --save-kubeconfig --switch: the context is saved and current.
    saved = yaml.safe_load(launched.cli.kubeconfig.read_text())
    assert saved["current-context"] == "k3sc-shared"
    assert mode(launched.cli.kubeconfig) == 0o600


def test_json_and_yaml_carry_the_apis_fields(launched: Launched) -> None:
    cli = launched.cli
    shown = json.loads(cli.ok("cluster", "show", "shared", "-o", "json"))
    assert shown["status"] == "running" and shown["eta_seconds"] is None
    assert {n["status"] for n in shown["nodes"]} == {"running"}
    assert set(shown) >= {"id", "name", "region", "k3s_version", "network", "firewall", "pools"}
    by_id = json.loads(cli.ok("cluster", "show", shown["id"], "-o", "json"))
    assert by_id["name"] == "shared"
    listed = yaml.safe_load(cli.ok("cluster", "list", "-o", "yaml"))
    assert "shared" in [c["name"] for c in listed]
    assert "shared" in cli.ok("cluster", "list")  # the table
    assert [r["slug"] for r in json.loads(cli.ok("region", "list", "-o", "json"))] == ["demo"]
    assert "small" in [s["slug"] for s in json.loads(cli.ok("size", "list", "-o", "json"))]
    assert any(v["default"] for v in yaml.safe_load(cli.ok("version", "list", "-o", "yaml")))
    events = json.loads(cli.ok("cluster", "events", "shared", "-o", "json"))
    assert {e["step"] for e in events if e["step"]} == set(STEPS)


def test_scale_up_waits_for_the_new_node_and_down_drains(launched: Launched) -> None:
    cli = launched.cli
    up = cli.run("cluster", "scale", "shared", "--pool", "workers", "--nodes", "3", "--wait")
    assert up.returncode == 0, up.stderr
    assert "done    [launch_k3s] shared-workers-2:" in up.stdout
    assert "[launch_k3s] shared-workers-0:" not in up.stdout  # only what came after
    down = json.loads(cli.ok("cluster", "scale", "shared", "--pool", "workers", "--nodes", "2",
                             "-o", "json"))  # fmt: skip
    assert down["pools"][0]["count"] == 2
    bad = cli.run("cluster", "scale", "shared", "--pool", "nope", "--nodes", "1")
    assert bad.returncode == 1 and "not_found" in bad.stderr


def test_kubeconfig_save_merges_beside_foreign_entries(cli: Cli) -> None:
    foreign = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "other", "cluster": {"server": "https://other:6443"}}],
        "users": [{"name": "other", "user": {"token": "secret"}}],
        "contexts": [{"name": "other", "context": {"cluster": "other", "user": "other"}}],
        "current-context": "other",
    }
    cli.kubeconfig.parent.mkdir(parents=True)
    cli.kubeconfig.write_text(yaml.safe_dump(foreign))
    cli.ok("cluster", "create", "kc", "--region", "demo", "--size", "small", "--nodes", "1")

    printed = yaml.safe_load(cli.ok("kubeconfig", "kc", "--role", "viewer", "--ttl", "600"))
    assert printed["kind"] == "Config" and printed["contexts"][0]["context"]["cluster"] == "kc"
    cli.ok("kubeconfig", "kc", "--save")
    saved = yaml.safe_load(cli.kubeconfig.read_text())
    assert saved["current-context"] == "other"
    assert [c["name"] for c in saved["contexts"]] == ["other", "k3sc-kc"]
    assert saved["users"][0] == foreign["users"][0]
    assert mode(cli.kubeconfig) == 0o600

    cli.ok("kubeconfig", "kc", "--save", "--switch")  # same names: replaced, not added
    saved = yaml.safe_load(cli.kubeconfig.read_text())
    assert saved["current-context"] == "k3sc-kc"
    assert [c["name"] for c in saved["clusters"]] == ["other", "k3sc-kc"]

    cli.ok("cluster", "delete", "kc", "--yes", "--delete-kubeconfig-context")
    left = yaml.safe_load(cli.kubeconfig.read_text())
    assert {s: left[s] for s in ("clusters", "users", "contexts")} == {
        s: foreign[s] for s in ("clusters", "users", "contexts")
    }
    assert left["current-context"] == ""
    assert "kc" not in [c["name"] for c in json.loads(cli.ok("cluster", "list", "-o", "json"))]


def test_a_failed_launch_exits_3_with_the_nodes_error(tmp_path, faulty_portal: Portal) -> None:
    cli = Cli(tmp_path, faulty_portal.url, faulty_portal.token("ops", "opsorg"))
    done = cli.run("cluster", "create", "doomed", "--region", "demo", "--size", "small",
                   "--nodes", "1", "--wait")  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    assert "error: launch_k3s_failed: node doomed-workers-0 failed at launch_k3s" in done.stderr
    assert "failed  [launch_k3s]" in done.stdout
    retried = cli.run("cluster", "retry", "doomed", "--wait")
    assert retried.returncode == 3 and "launch_k3s_failed" in retried.stderr
    assert "Retrying doomed-workers-0" in retried.stderr


def test_networks_and_firewalls_round_trip(cli: Cli) -> None:
    network = json.loads(cli.ok("network", "create", "lab", "--cidr", "10.60.0.0/24", "-o", "json"))
    assert network["cidr"] == "10.60.0.0/24"
    assert "lab" in [n["name"] for n in json.loads(cli.ok("network", "list", "-o", "json"))]
    firewall = json.loads(cli.ok(
        "firewall", "create", "lab-ssh", "--network", "lab", "--rule",
        "ingress:tcp:22:10.0.0.0/8:ssh", "--rule", "ingress:icmp::0.0.0.0/0", "-o", "json",
    ))  # fmt: skip
    assert firewall["network"] == network["id"]
    assert firewall["rules"][0] == {
        "direction": "ingress", "protocol": "tcp", "ports": "22", "cidr": "10.0.0.0/8",
        "label": "ssh",
    }  # fmt: skip
    updated = json.loads(cli.ok(
        "firewall", "update", "lab-ssh", "--remove-rule", "0",
        "--add-rule", "ingress:tcp:6443:0.0.0.0/0", "-o", "json",
    ))  # fmt: skip
    assert [r.get("ports") for r in updated["rules"]] == [None, "6443"]
    assert "lab-ssh" in cli.ok("firewall", "show", "lab-ssh")
    cli.ok("firewall", "delete", "lab-ssh", "--yes")
    cli.ok("network", "delete", "lab", "--yes")
    assert "lab" not in [n["name"] for n in json.loads(cli.ok("network", "list", "-o", "json"))]


def test_bad_input_names_the_field_and_creates_nothing(cli: Cli) -> None:
    done = cli.run("cluster", "create", "Bad_Name", "--region", "demo", "--size", "small")
    assert done.returncode == 1
    assert done.stderr.startswith("error: invalid: name: ")
    pools = cli.run("cluster", "create", "ok", "--region", "demo", "--pool", "a:huge:1")
    assert pools.returncode == 1 and "error: invalid: pools.0.size:" in pools.stderr
    cidr = cli.run("network", "create", "lab2", "--cidr", "10.61.0.1/24")
    assert cidr.returncode == 1 and "error: invalid: cidr:" in cidr.stderr
    rule = cli.run("firewall", "create", "fw", "--network", "default", "--rule",
                   "ingress:tcp:99999:0.0.0.0/0")  # fmt: skip
    assert rule.returncode == 1 and "error: invalid: rules.0.ports:" in rule.stderr
    names = [c["name"] for c in json.loads(cli.ok("cluster", "list", "-o", "json"))]
    assert "Bad_Name" not in names and "ok" not in names
