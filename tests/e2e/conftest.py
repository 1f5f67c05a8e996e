"""The browser tier: the portal started for real in embedded mode, driven by Chromium.

One portal per session, as `make run` starts it (migrate, seed_demo, serve) but in a
temporary DATA_DIR on a free port, with the production-mode variables removed so the
tier always exercises SQLite, the filesystem broker and the polling websocket consumer.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
]
# Variables that would switch the portal out of embedded mode (CI sets them for the
# rest of the suite).
PRODUCTION_ONLY = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DEBUG")
START_SECONDS = 60


@dataclass(frozen=True)
class Portal:
    url: str
    username: str
    password: str
    data_dir: Path

    @property
    def log(self) -> Path:
        return self.data_dir / "serve.log"

    def server_errors(self) -> list[str]:
        """Tracebacks and 500s the web process or the worker logged so far."""
        markers = ("Traceback", "Internal Server Error")
        return [
            line for line in self.log.read_text().splitlines() if any(m in line for m in markers)
        ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        pytest.fail(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _status(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (local http)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _wait_ready(url: str, server: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    """Wait for /healthz, then /readyz (a worker has reported); return the readiness body."""
    deadline = time.monotonic() + START_SECONDS
    last: object = None
    for path in ("/healthz", "/readyz"):
        while True:
            if server.poll() is not None:
                pytest.fail(f"the portal exited with {server.returncode}:\n{log.read_text()}")
            try:
                code, body = _status(url + path)
                if code == 200:
                    break
                last = body
            except (OSError, ValueError) as error:
                last = error
            if time.monotonic() > deadline:
                pytest.fail(f"{path} not ready after {START_SECONDS} s: {last}\n{log.read_text()}")
            time.sleep(0.2)
    return body


@pytest.fixture(scope="session")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    data_dir = tmp_path_factory.mktemp("portal")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ONLY}
    env.update(
        DATA_DIR=str(data_dir),
        PORT=str(port),
        PORTAL_URL=url,
        # Fast, but each step still takes long enough for the page to show it running.
        CLOUD_GUEST_SIM_SCALE="0.05",
        # /readyz waits for the worker's first heartbeat; do not wait ten seconds for it.
        WORKER_HEARTBEAT_SECONDS="1",
        PYTHONUNBUFFERED="1",
    )
    _manage(env, "migrate", "--noinput")
    seeded = re.search(r"Demo login: (\S+) / (\S+)", _manage(env, "seed_demo"))
    assert seeded, "seed_demo did not print the demo login"
    log = data_dir / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = _wait_ready(url, server, log)
        assert ready["checks"]["database"]["detail"] == "sqlite", f"not embedded: {ready}"
        yield Portal(url, seeded[1], seeded[2], data_dir)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
