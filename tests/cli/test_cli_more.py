"""k3sc against a real portal, the verbs after launch: a pool's labels and taints and the
CNI at create, the health policy, and webhooks (to a receiver of the test's own, which
checks the signature with the secret `webhook create` printed)."""

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.cli.conftest import Cli, Launched

pytestmark = pytest.mark.portal


def test_create_passes_labels_taints_and_the_cni(cli: Cli) -> None:
    shown = json.loads(
        cli.ok(
            "cluster", "create", "tagged", "--region", "demo", "--size", "small", "--nodes", "1",
            "--cni", "cilium", "--label", "workers:tier=web", "--label", "workers:disk=ssd",
            "--taint", "workers:dedicated=web:NoSchedule", "-o", "json",
        )
    )  # fmt: skip
    assert shown["cni"] == "cilium"
    assert shown["pools"][0]["labels"] == {"tier": "web", "disk": "ssd"}
    assert shown["pools"][0]["taints"] == ["dedicated=web:NoSchedule"]
    bad = cli.run("cluster", "create", "x", "--region", "demo", "--size", "small",
                  "--label", "nosuchpool:a=b")  # fmt: skip
    assert bad.returncode == 2 and "no pool named nosuchpool" in bad.stderr
    refused = cli.run("cluster", "create", "y", "--region", "demo", "--size", "small",
                      "--taint", "workers:a=b:Sometimes")  # fmt: skip
    assert refused.returncode == 1 and "pools.0.taints" in refused.stderr
    cli.ok("cluster", "delete", "tagged", "--yes")


def test_heal_shows_and_changes_the_health_policy(launched: Launched) -> None:
    cli = launched.cli
    shown = json.loads(cli.ok("cluster", "heal", launched.name, "-o", "json"))
    assert shown == {"enabled": True, "after_seconds": 300, "max_parallel": 1}
    changed = cli.ok("cluster", "heal", launched.name, "--off", "--after", "120", "-o", "json")
    assert json.loads(changed) == {"enabled": False, "after_seconds": 120, "max_parallel": 1}
    too_soon = cli.run("cluster", "heal", launched.name, "--after", "5")
    assert too_soon.returncode == 1 and "after_seconds" in too_soon.stderr
    cli.ok("cluster", "heal", launched.name, "--on", "--after", "300")


class Receiver(BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.got.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.got = []
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_webhooks_create_ping_deliveries_and_delete(cli: Cli, receiver: str) -> None:
    done = cli.run("webhook", "create", receiver, "--event", "cluster.running",
                   "--description", "ci")  # fmt: skip
    assert done.returncode == 0, done.stderr
    secret = done.stderr.split("Signing secret (shown only now): ")[1].split()[0]
    listed = json.loads(cli.ok("webhook", "list", "-o", "json"))
    assert [(w["url"], w["events"]) for w in listed] == [(receiver, ["cluster.running"])]
    assert "secret" not in listed[0]

    cli.ok("webhook", "ping", receiver)
    for _ in range(100):  # the portal's worker sends it
        sent = json.loads(cli.ok("webhook", "deliveries", receiver, "-o", "json"))
        if sent and sent[0]["status"] == "delivered":
            break
        time.sleep(0.1)
    assert (sent[0]["type"], sent[0]["status"], sent[0]["last_status_code"]) == (
        "ping", "delivered", 204
    )  # fmt: skip
    headers, body = Receiver.got[-1]
    assert headers["X-Portal-Event"] == "ping"
    stamp, signed = (part.split("=", 1)[1] for part in headers["X-Portal-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(signed, expected.hexdigest())

    paused = json.loads(cli.ok("webhook", "update", receiver, "--no-active", "-o", "json"))
    assert paused["active"] is False
    cli.ok("webhook", "delete", receiver, "--yes")
    assert json.loads(cli.ok("webhook", "list", "-o", "json")) == []


def test_upgrade_wait_follows_the_rollout_to_the_end(cli: Cli) -> None:
    cli.ok("cluster", "create", "rolling", "--region", "demo", "--size", "small", "--nodes", "2",
           "--version", "v1.30.8+k3s1", "--wait")  # fmt: skip
    done = cli.run("cluster", "upgrade", "rolling", "--version", "v1.31.4+k3s1", "--wait",
                   "-o", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["k3s_version"] == "v1.31.4+k3s1" and shown["upgrade"]["to"] is None
    assert {n["k3s_version"] for n in shown["nodes"] if n["status"] == "running"} == {
        "v1.31.4+k3s1"
    }
    refused = cli.run("cluster", "upgrade", "rolling", "--version", "v1.30.8+k3s1")
    assert refused.returncode == 1 and "no downgrades" in refused.stderr
    cli.ok("cluster", "delete", "rolling", "--yes")
