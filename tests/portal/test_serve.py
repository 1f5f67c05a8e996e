"""`manage.py serve` started from a script that exits keeps running; `make run` asks it to
stop with its parent instead (--exit-with-parent)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portal.management.commands import serve
from tests import portal_process


def _start_from_a_script(tmp_path: Path, *flags: str) -> tuple[int, str]:
    """Start serve from a shell script that exits a few seconds later (serve is then
    re-parented); returns serve's pid and URL once the script is gone."""
    port = portal_process.free_port()
    env = portal_process.embedded_env(tmp_path, port)
    portal_process.manage(env, "migrate", "--noinput")
    command = f"{sys.executable} manage.py serve --port {port} {' '.join(flags)}"
    script = subprocess.Popen(
        ["bash", "-c", f"{command} > {tmp_path / 'serve.log'} 2>&1 & echo $!; sleep 4"],
        cwd=portal_process.ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert script.stdout is not None
    pid = int(script.stdout.readline().strip())
    script.wait(timeout=30)
    return pid, f"http://127.0.0.1:{port}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _healthy(url: str) -> bool:
    try:
        return portal_process.status(url + "/healthz")[0] == 200
    except OSError:
        return False


@pytest.mark.parametrize("flags", [(), ("--exit-with-parent",)])
def test_serve_outlives_the_script_that_started_it_unless_asked(
    tmp_path: Path, flags: tuple[str, ...]
) -> None:
    pid, url = _start_from_a_script(tmp_path, *flags)
    try:
        deadline = time.monotonic() + 60
        if flags:
            # Its parent (the script) is gone: it stops, and takes its children along.
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.3)
            assert not _alive(pid), "serve outlived its parent with --exit-with-parent"
            time.sleep(2)
            assert not _healthy(url), "the web server outlived serve"
        else:
            while time.monotonic() < deadline and not _healthy(url):
                time.sleep(0.3)
            assert _healthy(url), (tmp_path / "serve.log").read_text()
            time.sleep(2)  # well past serve's parent check
            assert _alive(pid) and _healthy(url)
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            for _ in range(60):
                if not _alive(pid):
                    break
                time.sleep(0.5)


@pytest.mark.parametrize(
    ("setting", "cores", "expected"), [("", 1, 1), ("", 2, 2), ("", 16, 4), ("3", 16, 3)]
)
def test_serve_starts_a_web_process_per_core_up_to_four_unless_told(
    monkeypatch: pytest.MonkeyPatch, setting: str, cores: int, expected: int
) -> None:
    monkeypatch.setenv("WEB_WORKERS", setting)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert serve.default_web_workers() == expected
