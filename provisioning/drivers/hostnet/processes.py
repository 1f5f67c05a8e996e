"""The long-lived helpers a tenant namespace runs (dnsmasq, the metadata proxy), known by
their pid files; a pid counts only while that process's command line still names the file,
so a recycled pid is never taken for (or killed as) ours."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def running(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if str(pidfile).encode() in cmdline else None


def signal_process(pidfile: Path, signum: int) -> bool:
    pid = running(pidfile)
    if pid is None:
        return False
    os.kill(pid, signum)
    return True


def stop(pidfile: Path, grace: float = 3.0) -> None:
    pid = running(pidfile)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while running(pidfile) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if running(pidfile) is not None:
            os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


def wait_for(pidfile: Path, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while running(pidfile) is None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
