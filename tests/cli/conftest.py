"""The CLI tier: `k3sc` run as a subprocess against real portal processes (embedded mode).

One seeded data folder per session, copied for each portal: the normal one, and one whose
simulated guests fail every launch_k3s (CLOUD_FAULTS), started only if a test needs it.
Each test gets its own HOME, XDG_CONFIG_HOME and KUBECONFIG.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import portal_process


@dataclass(frozen=True)
class Portal:
    url: str
    env: dict[str, str]

    def token(self, username: str, org: str) -> str:
        out = portal_process.manage(self.env, "create_token", username, "--org", org, "--create")
        return out.strip().splitlines()[-1]


@dataclass(frozen=True)
class Cli:
    """`k3sc` in a home of its own; logged in through K3SC_URL/K3SC_TOKEN unless told not."""

    home: Path
    url: str
    token: str

    @property
    def kubeconfig(self) -> Path:
        return self.home / "kube" / "config"

    @property
    def config_dir(self) -> Path:
        return self.home / "xdg" / "k3sc"

    def env(self, logged_in: bool) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("K3SC_")}
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / "xdg"),
            KUBECONFIG=str(self.kubeconfig),
            COLUMNS="200",
        )
        if logged_in:
            env.update(K3SC_URL=self.url, K3SC_TOKEN=self.token)
        return env

    def run(
        self, *args: str, logged_in: bool = True, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "k3sc", *args],
            env={**self.env(logged_in), **env},
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, f"k3sc {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done.stdout


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("seeded")
    env = portal_process.embedded_env(data_dir, 0)
    portal_process.manage(env, "migrate", "--noinput")
    portal_process.manage(env, "seed_demo")
    return data_dir


def serve(seeded: Path, data_dir: Path, **extra: str) -> Iterator[Portal]:
    shutil.copytree(seeded, data_dir, dirs_exist_ok=True)
    # A launch in a few seconds, a heartbeat a second (a server upgrades in place between
    # two); webhooks may reach the tests' own receiver on loopback.
    env = portal_process.portal_env(
        data_dir,
        CLOUD_GUEST_SIM_SCALE="0.02",
        HEARTBEAT_SECONDS="1",
        HEARTBEAT_STALE_SECONDS="30",
        WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
        **extra,
    )
    with portal_process.serving(env):
        yield Portal(env["PORTAL_URL"], env)


@pytest.fixture(scope="session")
def portal(seeded: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    yield from serve(seeded, tmp_path_factory.mktemp("portal"))


@pytest.fixture(scope="session")
def faulty_portal(seeded: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    yield from serve(seeded, tmp_path_factory.mktemp("faulty"), CLOUD_FAULTS="launch_k3s:1")


@pytest.fixture(scope="session")
def token(portal: Portal) -> str:
    return portal.token("dev", "devorg")


@pytest.fixture
def cli(tmp_path: Path, portal: Portal, token: str) -> Cli:
    return Cli(tmp_path, portal.url, token)


@dataclass(frozen=True)
class Launched:
    """The session's shared cluster: `create --wait --save-kubeconfig --switch`, non-TTY."""

    name: str
    done: subprocess.CompletedProcess[str]
    cli: Cli


@pytest.fixture(scope="session")
def launched(tmp_path_factory: pytest.TempPathFactory, portal: Portal, token: str) -> Launched:
    cli = Cli(tmp_path_factory.mktemp("launch"), portal.url, token)
    done = cli.run(
        "cluster", "create", "shared", "--region", "demo", "--size", "small", "--nodes", "2",
        "--wait", "--save-kubeconfig", "--switch",
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return Launched("shared", done, cli)
