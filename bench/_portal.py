"""The real portal as subprocesses (uvicorn, a Celery worker) on throwaway data.

`portal_environment(mode)` points os.environ at a fresh DATA_DIR and, in `services` mode,
at a PostgreSQL database and two Redis databases made for the run; everything is removed
at the end. Children started with `start()` inherit that environment.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _django import ROOT

from portal.management.commands.serve import web_command, worker_command

PYTHON = sys.executable
MODES = ("embedded", "services")
POSTGRES = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
# Redis databases of the benchmarks (the test suite and CI use 0 and 1); emptied afterwards.
BROKER_DB, LAYER_DB = 12, 13


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _redis_databases() -> Iterator[None]:
    import redis

    urls = [f"{REDIS}/{db}" for db in (BROKER_DB, LAYER_DB)]
    clients = [redis.Redis.from_url(url) for url in urls]
    for url, client in zip(urls, clients, strict=True):
        if client.dbsize():
            raise SystemExit(f"{url} is not empty: another run uses it, or one was interrupted")
    try:
        yield
    finally:
        for client in clients:
            client.flushdb()
            client.close()


@contextmanager
def _postgres_database(name: str) -> Iterator[None]:
    import psycopg

    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def portal_environment(mode: str, port: int, **extra: str) -> Iterator[Path]:
    """Set os.environ for a fresh portal on `port`; yields its DATA_DIR."""
    assert mode in MODES
    data_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    saved = dict(os.environ)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "cloud.settings",
            "DATA_DIR": str(data_dir),
            "PORT": str(port),
            "PORTAL_URL": f"http://127.0.0.1:{port}",
            "LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    database = f"bench_{os.getpid()}"
    try:
        if mode == "services":
            os.environ.update(
                DATABASE_URL=f"{POSTGRES}/{database}",
                CELERY_BROKER_URL=f"{REDIS}/{BROKER_DB}",
                REDIS_URL=f"{REDIS}/{LAYER_DB}",
            )
            with _postgres_database(database), _redis_databases():
                yield data_dir
        else:
            yield data_dir
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(data_dir, ignore_errors=True)


def manage(*args: str) -> str:
    """Run a management command in a child process; its stdout."""
    done = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def prepare(username: str = "bench") -> str:
    """Migrate, seed the demo supercluster, and return an owner's API token."""
    manage("init_secrets")
    manage("migrate", "--noinput", "-v", "0")
    manage("seed_demo")
    return manage("create_token", username, "--org", username, "--create").strip().splitlines()[-1]


def start(name: str, *command: str) -> subprocess.Popen[bytes]:
    """Start a child with the current environment; output goes to DATA_DIR/<name>.log."""
    log = open(Path(os.environ["DATA_DIR"]) / f"{name}.log", "wb")  # noqa: SIM115
    # Its own process group, so stop() reaches whatever it starts (Celery's beat process).
    return subprocess.Popen(
        command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def web(port: int, *wrapper: str, workers: int = 1) -> subprocess.Popen[bytes]:
    """The ASGI server as `manage.py serve` starts it (under `wrapper`, e.g. a profiler)."""
    return start("web", *wrapper, *web_command("127.0.0.1", port, workers))


def worker(concurrency: int, *wrapper: str, queue: str = "") -> subprocess.Popen[bytes]:
    """A Celery worker with beat, threads pool, as `manage.py serve` starts it; with `queue`,
    a worker of that queue alone (logging to DATA_DIR/<queue>.log)."""
    return start(queue or "worker", *wrapper, *worker_command(concurrency, queue=queue))


def stop(*children: subprocess.Popen[bytes]) -> None:
    """TERM each child's process group (a worker's beat, a profiled child), KILL stragglers."""

    def signal_group(child: subprocess.Popen[bytes], number: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, number)

    for child in children:
        signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        signal_group(child, signal.SIGKILL)
        child.wait()


def wait_until(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def log_tail(name: str, lines: int = 30) -> str:
    path = Path(os.environ["DATA_DIR"]) / f"{name}.log"
    text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
    return f"--- {name}.log\n" + "\n".join(text)


def log_has(name: str, text: str) -> bool:
    path = Path(os.environ["DATA_DIR"]) / f"{name}.log"
    return path.exists() and text in path.read_text(errors="replace")


def api(
    port: int, token: str, method: str, path: str, body: object = None, timeout: float = 30.0
) -> Any:
    """One JSON call to the portal's API; raises on a status >= 400."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise SystemExit(f"{method} {path}: {error.code} {error.read().decode()[:500]}") from error


def serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except OSError:
        return False


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def python_pid(child: subprocess.Popen[bytes], wrapped: bool) -> int:
    """The Python process itself: the child, or the wrapper's only child."""
    if not wrapped:
        return child.pid
    for _ in range(100):
        for task in Path(f"/proc/{child.pid}/task").iterdir():
            children = (task / "children").read_text().split()
            if children:
                return int(children[0])
        time.sleep(0.05)
    raise SystemExit(f"no child under {child.args!r}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command name) of every process now."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                comm = (entry / "comm").read_text().strip()
                found.append((int(entry.name), int(_stat(int(entry.name))[1]), comm))
    return found


def tree_cpu(pid: int) -> float:
    """CPU seconds of `pid` and every process below it (uvicorn's workers, a worker's
    beat), the living ones: a process that exited took its own with it."""
    processes = _processes()
    tree, grew = {pid}, True
    while grew:
        below = {p for p, parent, _ in processes if parent in tree} - tree
        tree |= below
        grew = bool(below)
    total = 0.0
    for member in tree:
        with contextlib.suppress(OSError):
            total += cpu_seconds(member)
    return total


def service_cpu(*names: str) -> float:
    """CPU seconds of every process with one of these command names (postgres, redis)."""
    total = 0.0
    for pid, _, comm in _processes():
        if comm in names:
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
    return total


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, every core and process."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


def log_count(name: str, text: str) -> int:
    path = Path(os.environ["DATA_DIR"]) / f"{name}.log"
    return path.read_text(errors="replace").count(text) if path.exists() else 0
