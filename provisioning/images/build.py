"""Building a base image: the checks before the slow part, then the build script."""

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("build-image.sh")
BUNDLE_FILES = ("k3s", "k3s-airgap-images-amd64.tar.zst", "install.sh")
# The tool each Debian package brings, for a clear message before a long build.
TOOLS = {
    "mmdebstrap": "mmdebstrap",
    "extlinux": "extlinux",
    "sfdisk": "fdisk",
    "qemu-img": "qemu-utils",
    "mkfs.ext4": "e2fsprogs",
}
# The MBR boot code the script writes, from syslinux-common.
MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")


class BuildError(Exception):
    pass


@dataclass(frozen=True)
class Built:
    path: Path
    seconds: float
    size_bytes: int
    has_k3s: bool


def manifest_path(image: Path) -> Path:
    """What the builder says of an image, beside it: whether it carries K3s."""
    return image.with_name(image.name + ".json")


def has_k3s(image: Path) -> bool | None:
    """From the image's manifest; None when it has none (built elsewhere)."""
    manifest = manifest_path(image)
    return bool(json.loads(manifest.read_text())["has_k3s"]) if manifest.exists() else None


def missing_packages() -> list[str]:
    """The Debian packages the build needs and this machine lacks (scripts/system-deps.sh
    installs them; .ci/run names them)."""
    missing = {pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None}
    if not MBR.is_file():
        missing.add("syslinux-common")
    return sorted(missing)


def check_bundle(bundle: Path) -> None:
    absent = [name for name in BUNDLE_FILES if not (bundle / name).is_file()]
    if absent:
        raise BuildError(f"{bundle} is not a K3s bundle: missing {', '.join(absent)}")


def build(out: Path, bundle: Path | None, size: str, mirror: str) -> Built:
    missing = missing_packages()
    if missing:
        raise BuildError(
            "missing tools; install them with: apt-get install -y " + " ".join(missing)
        )
    if bundle is not None:
        check_bundle(bundle)
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(SCRIPT), str(out), str(bundle or "")],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SIZE": size, "MIRROR": mirror},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BuildError(f"the build failed ({done.returncode}):\n{done.stderr[-4000:]}")
    built = Built(out, time.monotonic() - started, out.stat().st_size, bundle is not None)
    manifest_path(out).write_text(
        json.dumps(
            {
                "has_k3s": built.has_k3s,
                "build_seconds": round(built.seconds, 1),
                "size_bytes": built.size_bytes,
            }
        )
    )
    return built
