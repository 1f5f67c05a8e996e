"""Statuses and their transition tables; `transition()` is the only way to change one.

A transition is a conditional UPDATE (`filter(pk, status__in=from).update(status=to)`):
it returns False when another actor got there first, and never reads-modifies-writes.
"""

from collections.abc import Iterable
from typing import Any

from django.db import models


class ClusterStatus(models.TextChoices):
    PENDING = "pending"
    PROVISIONING = "provisioning"
    RUNNING = "running"
    DEGRADED = "degraded"
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"


class NodeStatus(models.TextChoices):
    PENDING = "pending"
    PROVISIONING = "provisioning"
    RUNNING = "running"
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"


class Step(models.TextChoices):
    IMPORT_IMAGE = "import_image", "Import image"
    START_VM = "start_vm", "Start VM"
    CLOUD_INIT = "cloud_init", "Cloud-init"
    FETCH_DEPS = "fetch_deps", "Fetch dependencies"
    LAUNCH_K3S = "launch_k3s", "Launch K3s"


STEPS: tuple[Step, ...] = tuple(Step)
# Steps the worker performs through the driver; the guest reports the others.
DRIVER_STEPS = (Step.IMPORT_IMAGE, Step.START_VM)
GUEST_STEPS = (Step.CLOUD_INIT, Step.FETCH_DEPS, Step.LAUNCH_K3S)

C, N = ClusterStatus, NodeStatus

CLUSTER_TRANSITIONS: dict[str, set[str]] = {
    C.PENDING: {C.PROVISIONING, C.FAILED, C.DELETING},
    C.PROVISIONING: {C.RUNNING, C.DEGRADED, C.FAILED, C.DELETING},
    C.RUNNING: {C.PROVISIONING, C.DEGRADED, C.FAILED, C.DELETING},
    C.DEGRADED: {C.PROVISIONING, C.RUNNING, C.FAILED, C.DELETING},
    C.FAILED: {C.PROVISIONING, C.DELETING},
    C.DELETING: {C.DELETED},
    C.DELETED: set(),
}

NODE_TRANSITIONS: dict[str, set[str]] = {
    N.PENDING: {N.PROVISIONING, N.FAILED, N.DELETING},
    N.PROVISIONING: {N.RUNNING, N.FAILED, N.DELETING},
    N.RUNNING: {N.FAILED, N.DELETING},
    N.FAILED: {N.PENDING, N.DELETING},  # retry goes back to pending
    N.DELETING: {N.DELETED},
    N.DELETED: set(),
}

LIVE_CLUSTER = [s for s in ClusterStatus if s not in (C.DELETED,)]
LIVE_NODE = [s for s in NodeStatus if s not in (N.DELETED,)]


class IllegalTransition(Exception):
    """A transition the table does not allow; a programming error, not a race."""


def _table_for(model: type[models.Model]) -> dict[str, set[str]]:
    return CLUSTER_TRANSITIONS if model._meta.model_name == "cluster" else NODE_TRANSITIONS


def transition(obj: models.Model, from_states: Iterable[str], to: str, **fields: Any) -> bool:
    """Move `obj` from one of `from_states` to `to`, with extra `fields`, if still there.

    Raises IllegalTransition when the table forbids any of the moves; returns False when
    the row was no longer in `from_states` (someone else moved it first).
    """
    sources = list(from_states)
    table = _table_for(type(obj))
    bad = [s for s in sources if to not in table[s]]
    if bad:
        raise IllegalTransition(f"{type(obj).__name__} cannot go from {bad} to {to}")
    updated = (
        type(obj)._default_manager.filter(pk=obj.pk, status__in=sources).update(status=to, **fields)
    )
    if updated:
        obj.status = to  # type: ignore[attr-defined]
        for name, value in fields.items():
            setattr(obj, name, value)
    return bool(updated)
