"""Run the host agent of one hypervisor: a Celery worker on its queue `host.<NAME>`.

    manage.py host_agent NAME [--uri qemu:///system] [--concurrency 1]

Start it on (or next to) the host, with the portal's settings (HOST_QUEUES=1, the same
broker and database); deploy/systemd/k3s-portal-host-agent@.service runs one per host.
One thread by default: the host's libvirt calls (networks, DHCP entries, domains) then
happen one at a time, so two nodes starting on one host never race on its network.
"""

import os
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning import queues
from provisioning.models import Hypervisor


class Command(BaseCommand):
    help = "Run the Celery worker that does a hypervisor's libvirt work (queue host.NAME)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument(
            "--uri",
            default="",
            help="the host's libvirt URI as seen from here (e.g. qemu:///system on the host "
            "itself); default: the URI stored for the hypervisor",
        )
        parser.add_argument("--concurrency", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"]
        stored = Hypervisor.objects.filter(name=name).values_list("uri", flat=True).first()
        if stored is None:
            raise CommandError(f"No hypervisor {name!r} (add it with add_hypervisor).")
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1.")
        if options["uri"]:
            # Read by cloud/settings.py in the worker: LIBVIRT_URI_ALIASES.
            os.environ["HOST_AGENT_STORED_URI"] = stored
            os.environ["HOST_AGENT_URI"] = options["uri"]
        command = [
            sys.executable, "-m", "celery", "-A", "cloud", "worker",
            "--queues", queues.for_host(name), "--hostname", f"agent-{name}@%h",
            "--pool", "threads", "--concurrency", str(options["concurrency"]),
            "--loglevel", "INFO", "--without-mingle", "--without-gossip",
        ]  # fmt: skip
        if not settings.HOST_QUEUES:
            self.stderr.write("HOST_QUEUES is off: every task stays on the default queue.")
        uri = options["uri"] or stored
        # As serve does: in embedded mode the keys live in DATA_DIR, and the worker exec'd
        # below must find them there even when it starts before serve has written them.
        call_command("init_secrets", stdout=self.stdout)
        self.stdout.write(f"Host agent of {name}: queue {queues.for_host(name)}, libvirt {uri}")
        self.stdout.flush()
        os.execv(sys.executable, command)  # noqa: S606  (the agent is that worker)
