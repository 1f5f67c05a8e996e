"""Run the web server and a Celery worker (with beat) together, as `make run` does.

Stops every child on Ctrl-C or SIGTERM, and with --exit-with-parent (as `make run` starts
it) also when its parent goes away; without that flag it may be started from a script
that then exits.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


def default_web_workers() -> int:
    """WEB_WORKERS, or one web process per core up to four: each runs sync views on one
    thread, so a single process leaves the other cores to the worker alone."""
    return int(os.environ.get("WEB_WORKERS") or min(4, os.cpu_count() or 1))


def web_command(host: str, port: int, workers: int = 1) -> list[str]:
    """The ASGI server. Django runs sync views on one thread per process, so more web
    processes (`--web-workers`, WEB_WORKERS) are how the web tier uses more cores."""
    return [
        sys.executable, "-m", "uvicorn", "cloud.asgi:application",
        "--host", host, "--port", str(port), "--workers", str(workers),
        "--no-access-log", "--lifespan", "off",
    ]  # fmt: skip


def worker_command(concurrency: int, *, queue: str = "") -> list[str]:
    """One Celery worker process with threads, and beat: the libvirt test driver keeps its
    state in the process holding the connection, and threads suit I/O-bound libvirt calls.
    With `queue`, a worker of that queue only, without beat."""
    return [
        sys.executable, "-m", "celery", "-A", "cloud", "worker",
        *(("--queues", queue) if queue else ("--beat",)),
        "--pool", "threads", "--concurrency", str(concurrency),
        "--loglevel", "INFO", "--without-mingle", "--without-gossip",
    ]  # fmt: skip


class Command(BaseCommand):
    help = "Start the ASGI web server and a Celery worker with beat, stop them together."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=settings.PORT)
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--concurrency", type=int, default=8, help="worker threads")
        parser.add_argument(
            "--exit-with-parent",
            action="store_true",
            help="stop when the process that started this one exits (make run)",
        )
        parser.add_argument("--web-workers", type=int, default=default_web_workers())

    def handle(self, *args: Any, **options: Any) -> None:
        # Before the children start, so web and worker read the same keys (embedded mode).
        call_command("init_secrets", stdout=self.stdout)
        # The processes' metric samples start from zero (observability.instruments).
        for stale in Path(settings.PROMETHEUS_MULTIPROC_DIR).glob("*.db"):
            stale.unlink(missing_ok=True)
        web = web_command(options["host"], options["port"], options["web_workers"])
        worker = worker_command(options["concurrency"])
        children = [subprocess.Popen(cmd) for cmd in (web, worker)]
        parent = os.getppid()
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"Portal: http://{options['host']}:{options['port']}/  (Ctrl-C stops)")
        try:
            while not stopping and all(c.poll() is None for c in children):
                if options["exit_with_parent"] and os.getppid() != parent:  # make was killed
                    break
                time.sleep(0.3)
        finally:
            for child in children:
                if child.poll() is None:
                    child.terminate()
            deadline = time.monotonic() + 15
            for child in children:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
        failed = [
            name
            for name, c in zip(("web", "worker"), children, strict=True)
            if c.returncode not in (0, -signal.SIGTERM, None)
        ]
        if failed and not stopping:
            raise SystemExit(f"stopped because a child exited: {failed}")
