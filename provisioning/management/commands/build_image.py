"""Build the base image every node's disk is cloned from (a bootable Debian bookworm).

    manage.py build_image OUT.qcow2 [--k3s-bundle DIR] [--size 3G] [--mirror URL]

The K3s bundle is what the operator downloads from K3s's releases: `k3s`,
`k3s-airgap-images-amd64.tar.zst` and `install.sh`. Without it the image is built "no
K3s": nodes boot and report every step up to launch_k3s, which fails k3s_bundle_missing.
"""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning.images import build


class Command(BaseCommand):
    help = "Build a bootable Debian base image with cloud-init and the guest agent's tools."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", type=Path)
        parser.add_argument("--k3s-bundle", type=Path, default=None)
        parser.add_argument("--size", default="3G", help="virtual disk size")
        parser.add_argument("--mirror", default="http://deb.debian.org/debian")

    def handle(self, *args: Any, **options: Any) -> None:
        bundle = options["k3s_bundle"]
        if bundle is None:
            self.stdout.write(
                'No --k3s-bundle: building a "no K3s" image (launch_k3s will fail with '
                "k3s_bundle_missing)."
            )
        try:
            built = build.build(options["out"], bundle, options["size"], options["mirror"])
        except build.BuildError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"Built {built.path} in {built.seconds:.0f} s, {built.size_bytes / 2**20:.0f} MiB"
            f" on disk, {'with' if built.has_k3s else 'without'} K3s."
        )
