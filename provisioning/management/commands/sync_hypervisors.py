"""Sync every hypervisor now (what the periodic task does) and print the inventory."""

from typing import Any

from django.core.management.base import BaseCommand, OutputWrapper
from django.db.models import QuerySet

from provisioning import inventory
from provisioning.models import Hypervisor

_COLUMNS = "{:<20} {:<10} {:<11} {:>11} {:>17} {:>7} {:>8}  {}"


def print_table(out: OutputWrapper, hypervisors: QuerySet[Hypervisor]) -> None:
    out.write(
        _COLUMNS.format(
            "NAME", "REGION", "STATE", "VCPUS", "MEMORY MIB", "DOMAINS", "FAILURES", "LAST ERROR"
        )
    )
    for h in hypervisors.select_related("region"):
        out.write(
            _COLUMNS.format(
                h.name,
                h.region.slug,
                h.state,
                f"{h.vcpus_allocated}/{h.vcpus_capacity}",
                f"{h.memory_mib_allocated}/{h.memory_mib_capacity}",
                h.domain_count,
                h.sync_failures,
                h.last_error,
            )
        )


class Command(BaseCommand):
    help = "Sync every hypervisor with libvirt now and print allocated/capacity per host."

    def handle(self, *args: Any, **options: Any) -> None:
        for pk in Hypervisor.objects.values_list("pk", flat=True):
            inventory.sync_hypervisor(pk)
        print_table(self.stdout, Hypervisor.objects.all())
