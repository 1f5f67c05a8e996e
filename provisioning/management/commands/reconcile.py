"""Reconcile hypervisors with the database now (what the periodic task does) and report."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning import reconcile
from provisioning.models import Hypervisor, HypervisorState


class Command(BaseCommand):
    help = (
        "Converge every hypervisor that is not offline (or those named) with the database: "
        "restart or re-create running nodes' domains, record and remove orphan domains."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", help="hypervisor names (default: all online)")

    def handle(self, *args: Any, **options: Any) -> None:
        hosts = Hypervisor.objects.exclude(state=HypervisorState.OFFLINE)
        names = options["names"]
        if names:
            hosts = Hypervisor.objects.filter(name__in=names)
            unknown = sorted(set(names) - set(hosts.values_list("name", flat=True)))
            if unknown:
                raise CommandError(f"No such hypervisor: {', '.join(unknown)}")
        failed = False
        for pk in hosts.values_list("pk", flat=True):
            report = reconcile.reconcile_hypervisor(pk)
            failed |= bool(report.errors)
            self.stdout.write(str(report))
        if failed:
            raise CommandError("Some hypervisors could not be reconciled (see above).")
