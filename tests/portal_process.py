"""A portal started for real, as `make run` starts it, for the tiers that need processes:
the browser tier (embedded mode) and the real-VM tier (a real host agent and real guests)."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Variables that would switch the portal out of embedded mode (CI sets them for the
# rest of the suite), and this test process's metrics folder (the settings set it): a
# portal started here keeps its own under its DATA_DIR, since `serve` empties it.
PRODUCTION_ONLY = (
    "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CACHE_URL", "DEBUG",
    "PROMETHEUS_MULTIPROC_DIR",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedded_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ONLY}
    env.update(DATA_DIR=str(data_dir), PORT=str(port), PYTHONUNBUFFERED="1", **extra)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        pytest.fail(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """`manage.py ARGS` in the background, its output in `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def status(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (local http)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def wait_ready(
    url: str, server: subprocess.Popen[bytes], log: Path, seconds: float = 60
) -> dict[str, Any]:
    """Wait for /healthz, then /readyz (a worker has reported); return the readiness body."""
    deadline = time.monotonic() + seconds
    last: object = None
    body: dict[str, Any] = {}
    for path in ("/healthz", "/readyz"):
        while True:
            if server.poll() is not None:
                pytest.fail(f"the portal exited with {server.returncode}:\n{log.read_text()}")
            try:
                code, body = status(url + path)
                if code == 200:
                    break
                last = body
            except (OSError, ValueError) as error:
                last = error
            if time.monotonic() > deadline:
                pytest.fail(f"{path} not ready after {seconds} s: {last}\n{log.read_text()}")
            time.sleep(0.2)
    return body


def portal_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """An embedded portal's environment on a free port, its worker reporting every second
    (/readyz waits for the first report)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    return embedded_env(data_dir, port, PORTAL_URL=url, WORKER_HEARTBEAT_SECONDS="1", **extra)


@contextlib.contextmanager
def serving(env: dict[str, str]) -> Iterator[dict[str, Any]]:
    """`manage.py serve` in `env` until the block ends; yields the readiness body."""
    log = Path(env["DATA_DIR"]) / "serve.log"
    server = start(env, log, "serve", "--port", env["PORT"])
    try:
        yield wait_ready(env["PORTAL_URL"], server, log)
    finally:
        stop(server)
