"""Add a hypervisor by libvirt URI, then sync it at once so its totals are known."""

import argparse
import ipaddress
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from portal import audit
from portal.actor import Actor, Via
from provisioning import inventory, virtualisation
from provisioning.management.commands.sync_hypervisors import print_table
from provisioning.models import CpuMode, Hypervisor, Region, VirtType


def overcommit(value: str) -> float:
    ratio = float(value)
    if not 0 < ratio <= 100:
        raise argparse.ArgumentTypeError("must be a ratio above 0, e.g. 4 or 1.5")
    return ratio


def ipv4(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError as err:
        raise argparse.ArgumentTypeError("must be an IPv4 address, e.g. 192.0.2.10") from err


class Command(BaseCommand):
    help = "Add hypervisor NAME reached at libvirt URI to a region, then sync it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("uri", help="e.g. qemu+ssh://root@host/system")
        parser.add_argument("--region", required=True, help="slug of an existing region")
        parser.add_argument("--storage-pool", default="default")
        parser.add_argument("--cpu-overcommit", type=overcommit, default=4.0)
        parser.add_argument("--memory-overcommit", type=overcommit, default=1.0)
        # Left out: detected from the host's domcapabilities at the first sync.
        parser.add_argument("--virt-type", choices=VirtType.values, default="")
        parser.add_argument("--cpu-mode", choices=CpuMode.values, default="")
        parser.add_argument("--cpu-model", default="", help="e.g. qemu64, with --cpu-mode custom")
        parser.add_argument("--machine-type", default="", help='e.g. "q35" or "pc-q35-7.2"')
        parser.add_argument(
            "--underlay",
            type=ipv4,
            help="this host's address for tenant networks' VXLAN traffic (else they stay local)",
        )
        parser.add_argument(
            "--public-address",
            type=ipv4,
            help="where customers reach this host: server nodes' APIs are forwarded there",
        )
        parser.add_argument(
            "--credentials-file",
            type=Path,
            help="SSH or TLS client key for the URI; stored encrypted",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        region = Region.objects.filter(slug=options["region"]).first()
        if region is None:
            known = ", ".join(Region.objects.values_list("slug", flat=True)) or "none yet"
            raise CommandError(f"No region {options['region']!r} (known: {known}).")
        credentials = ""
        if options["credentials_file"]:
            try:
                credentials = options["credentials_file"].read_text()
            except OSError as err:
                raise CommandError(f"Cannot read the credentials file: {err}") from err
        hypervisor = Hypervisor(
            name=options["name"],
            uri=options["uri"],
            region=region,
            storage_pool=options["storage_pool"],
            cpu_overcommit=options["cpu_overcommit"],
            memory_overcommit=options["memory_overcommit"],
            credentials=credentials,
            # Blank: the sync fills them in from the host's domcapabilities.
            virt_type=options["virt_type"],
            cpu_mode=options["cpu_mode"],
            cpu_model=options["cpu_model"],
            machine_type=options["machine_type"],
            underlay_address=options["underlay"],
            public_address=options["public_address"],
        )
        try:
            virtualisation.check(hypervisor)
        except ValidationError as err:
            problems = "; ".join(f"{f}: {' '.join(m)}" for f, m in err.message_dict.items())
            raise CommandError(problems) from err
        with transaction.atomic():
            hypervisor.save()
            audit.record(
                "hypervisor.create", hypervisor, Actor.system(Via.COMMAND), uri=hypervisor.uri
            )
        inventory.sync_hypervisor(hypervisor.pk)
        print_table(self.stdout, Hypervisor.objects.filter(pk=hypervisor.pk))
