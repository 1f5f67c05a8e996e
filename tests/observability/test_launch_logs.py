"""The logs of one real launch (`manage.py serve`: the web process and its worker, the
simulator's guests phoning home over HTTP): JSON lines; the create request's id in the
lines of both processes; the cluster's uuid on every step of every node, guest steps
included; and no secret anywhere (join token, CA private keys, guest tokens)."""

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests import portal_process

STEPS = {"import_image", "start_vm", "cloud_init", "fetch_deps", "launch_k3s"}
REQUEST_ID = "launch-4711"
BODY = {"name": "logged", "region": "demo", "pools": [{"name": "w", "size": "small", "count": 2}]}


def api(url: str, token: str, method: str, path: str, body: Any = None, **headers: str) -> Any:
    request = urllib.request.Request(  # noqa: S310 (the portal on this machine)
        url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


@pytest.fixture(scope="module")
def launch(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data_dir = tmp_path_factory.mktemp("logs")
    port = portal_process.free_port()
    env = portal_process.embedded_env(
        data_dir, port, CLOUD_GUEST_SIM_SCALE="0.02", LOG_FORMAT="json"
    )
    for command in (("init_secrets",), ("migrate", "--noinput"), ("seed_demo",)):
        portal_process.manage(env, *command)
    token = portal_process.manage(env, "create_token", "demo", "--org", "demo").splitlines()[-1]
    log = data_dir / "serve.log"
    server = portal_process.start(env, log, "serve", "--port", str(port))
    url = f"http://127.0.0.1:{port}"
    try:
        portal_process.wait_ready(url, server, log)
        body = {
            "name": "logged",
            "region": "demo",
            "pools": [{"name": "w", "size": "small", "count": 2}],
        }
        cluster = api(
            url, token, "POST", "/api/v1/clusters", body, **{"X-Request-ID": "launch-4711"}
        )
        deadline = time.monotonic() + 60
        while api(url, token, "GET", f"/api/v1/clusters/{cluster['id']}")["status"] != "running":
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        secrets = portal_process.manage(
            env,
            "shell",
            "-c",
            "from provisioning.models import Cluster; from provisioning import guest_seed; "
            f"c = Cluster.objects.get(uuid='{cluster['id']}'); "
            "print(c.join_token); print(c.server_ca_key.splitlines()[1]); "
            "print(c.client_ca_key.splitlines()[1]); "
            "[print(guest_seed.node_token(n)) for n in c.nodes.all()]",
        ).split()
    finally:
        portal_process.stop(server)
    return cluster, log, [s for s in secrets if len(s) > 16]


def records(log: Path) -> list[dict[str, Any]]:
    """The JSON lines of the log (uvicorn's and Celery's banners are not all JSON)."""
    found = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def test_one_id_follows_the_create_request_into_the_worker(launch: Any) -> None:
    _, log, _ = launch
    lines = [r for r in records(log) if r.get("correlation_id") == REQUEST_ID]
    assert {r["process"] for r in lines} and len({r["process"] for r in lines}) >= 2, lines[:5]
    assert any(r["message"].startswith("Cluster requested") for r in lines)
    assert any(r.get("task_id") for r in lines)  # lines logged inside the tasks it led to


def test_the_clusters_uuid_marks_every_step_of_every_node(launch: Any) -> None:
    cluster, log, _ = launch
    mine = [r for r in records(log) if r.get("cluster") == cluster["id"]]
    for node in cluster["nodes"]:
        steps = {r["step"] for r in mine if r.get("node") == node["name"] and r.get("step")}
        assert steps == STEPS, (node["name"], steps)
    assert {r["level"] for r in mine} <= {"INFO", "WARNING"}


def test_no_secret_is_logged(launch: Any) -> None:
    _, log, secrets = launch
    assert len(secrets) == 5  # the join token, a line of each CA key, two guest tokens
    text = log.read_text()
    for secret in secrets:
        assert secret not in text
