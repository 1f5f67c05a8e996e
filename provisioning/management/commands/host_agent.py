"""Run the host agent of one hypervisor: a Celery worker on its queue `host.<NAME>`.

    manage.py host_agent NAME [--concurrency 1]

Start it on (or next to) the host, with the portal's settings (HOST_QUEUES=1, the same
broker and database); deploy/systemd/k3s-portal-host-agent@.service runs one per host.
One thread by default: the host's libvirt calls (networks, DHCP entries, domains) then
happen one at a time, so two nodes starting on one host never race on its network.
"""

import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning import queues
from provisioning.models import Hypervisor


class Command(BaseCommand):
    help = "Run the Celery worker that does a hypervisor's libvirt work (queue host.NAME)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--concurrency", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"]
        if not Hypervisor.objects.filter(name=name).exists():
            raise CommandError(f"No hypervisor {name!r} (add it with add_hypervisor).")
        command = [
            sys.executable, "-m", "celery", "-A", "cloud", "worker",
            "--queues", queues.for_host(name), "--hostname", f"agent-{name}@%h",
            "--pool", "threads", "--concurrency", str(options["concurrency"]),
            "--loglevel", "INFO", "--without-mingle", "--without-gossip",
        ]  # fmt: skip
        self.stdout.write(f"Host agent of {name}: queue {queues.for_host(name)}")
        self.stdout.flush()
        os.execv(sys.executable, command)  # noqa: S606  (the agent is that worker)
