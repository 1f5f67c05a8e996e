"""Which queue a task goes to: a hypervisor's own (`host.<name>`, its host agent) for the
tasks that call its libvirt, the default queue for everything else.

Celery asks `route()` for every message it sends (CELERY_TASK_ROUTES), retries included.
With HOST_QUEUES off (embedded mode) everything stays on the default queue, where the one
worker of `manage.py serve` takes it; GUEST_SIM_QUEUE, when set, takes the simulator's.
"""

from typing import Any

from django.conf import settings

from provisioning.models import Hypervisor, Node

DEFAULT = "celery"
# Task name -> what its first argument is the id of.
BY_NODE = {
    "provisioning.run_step",
    "provisioning.release_node",
    "provisioning.delete_node",
    "provisioning.report_silent_guest",  # reads the console log on the host
}
# The guest simulator's tasks (GUEST_SIM_QUEUE): what guests do, not the control plane.
SIMULATOR = {"provisioning.simulate_guest", "provisioning.simulate_heartbeats"}
BY_HOST = {
    "provisioning.sync_hypervisor",
    "provisioning.reconcile_hypervisor",
    "provisioning.agent_ping",
    "provisioning.sync_host_network",  # (hypervisor id, network id)
}


def for_host(name: str) -> str:
    return f"host.{name}"


def host_of(task: str, args: tuple[Any, ...] | list[Any]) -> str | None:
    if not args:
        return None
    if task in BY_NODE:
        return Node.objects.filter(pk=args[0]).values_list("hypervisor__name", flat=True).first()
    if task in BY_HOST:
        return Hypervisor.objects.filter(pk=args[0]).values_list("name", flat=True).first()
    return None


def route(name: str, args: Any, kwargs: Any, options: Any, **extra: Any) -> dict[str, str] | None:
    if name in SIMULATOR and settings.GUEST_SIM_QUEUE:
        return {"queue": settings.GUEST_SIM_QUEUE}
    if not settings.HOST_QUEUES:
        return None
    host = host_of(name, args or ())
    return {"queue": for_host(host) if host else DEFAULT}
