"""Put a base image on every hypervisor of a region, verified, and make it the version's.

    manage.py publish_image IMAGE.qcow2 --region R --version V [--volume NAME] [--k3s|--no-k3s]

`--version` names the K3s version the image serves (`--k3s-version` is the same flag;
Django's own `--version`, which prints Django's, is not offered by this command).

Uploads through libvirt's volume upload stream, reads the volume back to check its
SHA-256, and records per host whether the image is there. A host that already has it
(same digest) is skipped. Whether the image carries K3s comes from the builder's manifest
beside the image (IMAGE.qcow2.json), or from the flag.
"""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.actor import Actor, Via
from portal.errors import Invalid
from provisioning.images import build, publish
from provisioning.models import BaseImage, K3sVersion, Region


class Command(BaseCommand):
    help = "Upload a base image to every hypervisor of a region and verify it."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # Lets `--version` below replace the option every command gets from Django.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("image", type=Path)
        parser.add_argument("--region", required=True)
        parser.add_argument(
            "--version",
            "--k3s-version",
            dest="k3s_version",
            required=True,
            help="the K3s version it serves, e.g. v1.31.4+k3s1",
        )
        parser.add_argument(
            "--volume", help="volume name (default: the current one, else base-<version>.qcow2)"
        )
        parser.add_argument("--k3s", dest="has_k3s", action="store_true", default=None)
        parser.add_argument("--no-k3s", dest="has_k3s", action="store_false")

    def handle(self, *args: Any, **options: Any) -> None:
        image: Path = options["image"]
        if not image.is_file():
            raise CommandError(f"{image} is not a file.")
        region = Region.objects.filter(slug=options["region"]).first()
        version = K3sVersion.objects.filter(version=options["k3s_version"]).first()
        if region is None or version is None:
            raise CommandError("Unknown region or K3s version.")
        has_k3s = options["has_k3s"]
        if has_k3s is None:
            has_k3s = build.has_k3s(image)
        if has_k3s is None:
            raise CommandError("No manifest beside the image: say --k3s or --no-k3s.")
        current = BaseImage.objects.filter(region=region, version=version).first()
        # Default: the name the version's image already has, else base-<version>.qcow2.
        volume = options["volume"] or (
            current.volume_name if current else f"base-{version.version.replace('+', '-')}.qcow2"
        )
        try:
            outcomes = publish.publish(
                Actor.system(Via.COMMAND), image, region, version, volume, has_k3s
            )
        except Invalid as error:
            raise CommandError(error.message) from error
        for outcome in outcomes:
            self.stdout.write(f"{outcome.host}: {outcome.state} ({outcome.detail})")
        if not outcomes:
            raise CommandError(f"Region {region.slug} has no hypervisors.")
        if any(o.state != "present" for o in outcomes):
            raise CommandError("The image is not on every host.")
