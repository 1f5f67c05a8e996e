"""The real-VM tier: this machine as a hypervisor (libvirtd + QEMU, software emulation),
a base image built by the product's own builder, the portal and a host agent started
for real, and real Debian guests that boot, run cloud-init and phone home.

The image is cached outside the clone (REALVM_IMAGE_DIR, default
/var/cache/k3s-portal/images) and built when missing. Skipped, with the reason, only
where no libvirtd answers on qemu:///system.
"""

import hashlib
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import portal_process

URI = "qemu:///system"
REGION = "ci-real"
HOST = "ci-host"
POOL = "k3s-portal-ci"
POOL_DIR = Path("/var/lib/libvirt/images") / POOL
IMAGE_NAME = "base-bookworm.qcow2"  # the volume in the pool
RECIPE = portal_process.ROOT / "provisioning" / "images"


def virsh(*args: str) -> str:
    done = subprocess.run(
        ["virsh", "-q", "-c", URI, *args], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise AssertionError(f"virsh {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _libvirtd_reason() -> str | None:
    try:
        virsh("version")
    except (AssertionError, OSError) as error:
        return f"no libvirtd answering on {URI}: {error}"
    return None


MEASURED: dict[str, float] = {}


@pytest.fixture(scope="session")
def figures() -> dict[str, float]:
    """Timings the tier measures; the run's summary prints them (the README's table)."""
    return MEASURED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if MEASURED:
        terminalreporter.write_line("real-VM figures: " + json.dumps(MEASURED, sort_keys=True))


@pytest.fixture(scope="session")
def base_image(figures: dict[str, float], tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = _libvirtd_reason()
    if reason:
        pytest.skip(reason)
    cache = Path(os.environ.get("REALVM_IMAGE_DIR", "/var/cache/k3s-portal/images"))
    # Named by the recipe, so a changed builder builds (and this tier boots) a new image.
    recipe = hashlib.sha256()
    for part in sorted(RECIPE.iterdir()):
        if part.suffix in (".sh", ".cfg"):
            recipe.update(part.read_bytes())
    image = cache / f"base-bookworm-{recipe.hexdigest()[:12]}.qcow2"
    if not image.exists():
        env = portal_process.embedded_env(tmp_path_factory.mktemp("build"), 0)
        started = time.monotonic()
        portal_process.manage(env, "build_image", str(image), timeout=1200)
        figures["image_build_s"] = round(time.monotonic() - started, 1)
    return image


@dataclass
class RealPortal:
    url: str
    token: str
    other_token: str  # of a second organisation
    staff_token: str
    data_dir: Path
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def api(
        self, method: str, path: str, body: Any = None, *, staff: bool = False, token: str = ""
    ) -> Any:
        bearer = token or (self.staff_token if staff else self.token)
        request = urllib.request.Request(  # noqa: S310 (the portal on this machine)
            self.url + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={
                "Authorization": f"Bearer {bearer}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read()!r}") from None

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.data_dir.glob("*.log")))


def _token(env: dict[str, str], *args: str) -> str:
    return portal_process.manage(env, "create_token", *args).strip().splitlines()[-1]


@pytest.fixture(scope="session")
def real_portal(base_image: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealPortal]:
    data_dir = tmp_path_factory.mktemp("realvm")
    port = portal_process.free_port()
    # Guests reach the portal only through their network's metadata proxy, which the host
    # agent runs on this machine: the portal listens on loopback alone.
    env = portal_process.embedded_env(
        data_dir,
        port,
        CLOUD_GUEST_SIMULATOR="0",
        HOST_QUEUES="1",
        WORKER_HEARTBEAT_SECONDS="1",
        STEP_TIMEOUT_SECONDS="900",
        GUEST_BOOT_DEADLINE_SECONDS="600",
    )
    portal_process.manage(env, "init_secrets")
    portal_process.manage(env, "migrate", "--noinput")
    portal_process.manage(env, "seed_demo")
    portal_process.manage(
        env,
        "shell",
        "-c",
        "from provisioning.models import Region; "
        f"Region.objects.get_or_create(slug='{REGION}', defaults={{'name': 'This machine'}})",
    )
    POOL_DIR.mkdir(parents=True, exist_ok=True)
    if POOL not in virsh("pool-list", "--all", "--name").split():
        virsh("pool-define-as", POOL, "dir", "--target", str(POOL_DIR))
    if "running" not in virsh("pool-info", POOL):
        virsh("pool-start", POOL)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        yield _started(env, data_dir, port, base_image, processes)
    finally:
        for process in processes:
            portal_process.stop(process)
        for volume in volumes():
            virsh("vol-delete", volume, "--pool", POOL)
        virsh("pool-destroy", POOL)
        virsh("pool-undefine", POOL)


def _started(
    env: dict[str, str],
    data_dir: Path,
    port: int,
    base_image: Path,
    processes: list[subprocess.Popen[bytes]],
) -> RealPortal:
    """This machine as hypervisor HOST with the image published, the portal and its host
    agent running."""
    portal_process.manage(
        env, "add_hypervisor", HOST, URI, "--region", REGION, "--storage-pool", POOL,
        "--virt-type", "qemu",
    )  # fmt: skip
    version = portal_process.manage(
        env,
        "shell",
        "-c",
        "from provisioning.models import K3sVersion; "
        "print(K3sVersion.objects.get(is_default=True).version)",
    ).splitlines()[-1]
    portal_process.manage(
        env, "publish_image", str(base_image), "--region", REGION, "--k3s-version", version,
        "--volume", IMAGE_NAME, timeout=600,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    portal = RealPortal(
        url,
        _token(env, "demo", "--org", "demo"),
        _token(env, "other", "--org", "other", "--create"),
        _token(env, "ci-staff", "--org", "ci-staff", "--create", "--staff"),
        data_dir,
        env,
        processes,
    )
    serve = portal_process.start(env, data_dir / "serve.log", "serve", "--port", str(port))
    processes.append(serve)
    processes.append(portal_process.start(env, data_dir / "host-agent.log", "host_agent", HOST))
    portal_process.wait_ready(url, serve, data_dir / "serve.log")
    # Placement takes the host once its agent has answered a ping.
    deadline = time.monotonic() + 60
    while not any(
        h["name"] == HOST and h["agent_seen_at"]
        for h in portal.api("GET", "/api/v1/staff/hypervisors", staff=True)["results"]
    ):
        assert time.monotonic() < deadline, f"the host agent never answered\n{portal.logs()}"
        time.sleep(1)
    return portal


def volumes() -> list[str]:
    return [line.split()[0] for line in virsh("vol-list", POOL).splitlines() if line.strip()]


def leftovers(prefix: str, data_dir: Path) -> dict[str, list[str]]:
    """What of a cluster is still on this host: domains, volumes, nwfilters, and of its
    tenant networks the bridges, namespaces and helper processes (dnsmasq, metadata proxy)."""
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True).stdout)
    namespaces = subprocess.run(["ip", "-j", "netns"], capture_output=True).stdout or b"[]"
    helpers = subprocess.run(["pgrep", "-af", str(data_dir)], capture_output=True, text=True)
    return {
        "domains": [n for n in virsh("list", "--all", "--name").split() if n.startswith(prefix)],
        "volumes": [n for n in volumes() if n != IMAGE_NAME],
        "nwfilters": re.findall(r"k3s-fw-\w+", virsh("nwfilter-list")),
        "bridges": [x["ifname"] for x in links if x["ifname"].startswith("tnbr")],
        "namespaces": [n["name"] for n in json.loads(namespaces) if n["name"].startswith("tn-")],
        "helpers": [
            line for line in helpers.stdout.splitlines() if "dnsmasq" in line or "proxy" in line
        ],
    }
