"""Statuses, their named groups and transition tables; `transition()` is the only way to
change one.

A transition is a conditional UPDATE (`filter(pk, status__in=from).update(status=to)`):
it returns False when another actor got there first, and never reads-modifies-writes.
A model names its table (`TRANSITIONS`) and, when it is not `status`, its state field
(`STATE_FIELD`), so `transition()` needs no knowledge of the models.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models
from django.db.models import Q


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


class HypervisorState(models.TextChoices):
    ACTIVE = "active"
    CORDONED = "cordoned"
    MAINTENANCE = "maintenance"
    OFFLINE = "offline"


C, N, H = ClusterStatus, NodeStatus, HypervisorState

# Named groups: every filter and guard says which one it means. Lists, because the live
# name constraint (a migration) stores CLUSTER_LIVE as it is.
CLUSTER_LIVE = [s for s in C if s != C.DELETED]  # counts for names and quotas
CLUSTER_GONE = [C.DELETING, C.DELETED]  # on the way out: no more changes
CLUSTER_DELETABLE = [s for s in C if s not in CLUSTER_GONE]
CLUSTER_LAUNCHING = [C.PENDING, C.PROVISIONING]
CLUSTER_SETTLED = [C.RUNNING, C.DEGRADED, C.FAILED]  # a scale or retry launches again

NODE_LIVE = [s for s in N if s != N.DELETED]  # counts for quotas
NODE_GONE = [N.DELETING, N.DELETED]
NODE_DELETABLE = [s for s in N if s not in NODE_GONE]
NODE_LAUNCHING = [N.PENDING, N.PROVISIONING]
NODE_ACTIVE = [N.PENDING, N.PROVISIONING, N.RUNNING]  # holds or will hold a VM

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

# Only the inventory sync moves a host to or from offline (see provisioning.inventory).
HYPERVISOR_TRANSITIONS: dict[str, set[str]] = {
    H.ACTIVE: {H.CORDONED, H.MAINTENANCE, H.OFFLINE},
    H.CORDONED: {H.ACTIVE, H.MAINTENANCE},
    H.MAINTENANCE: {H.ACTIVE, H.CORDONED},
    H.OFFLINE: {H.ACTIVE},
}


class IllegalTransition(Exception):
    """A transition the table does not allow; a programming error, not a race."""


def _table_for(model: type[models.Model]) -> Mapping[str, set[str]]:
    table: Mapping[str, set[str]] | None = getattr(model, "TRANSITIONS", None)
    if table is None:
        raise TypeError(f"{model.__name__} has no TRANSITIONS table")
    return table


def transition(
    obj: models.Model, from_states: Iterable[str], to: str, *, when: Q | None = None, **fields: Any
) -> bool:
    """Move `obj` from one of `from_states` to `to`, with extra `fields`, if still there
    (and the row still matches `when`, a further guard of the same UPDATE).

    Raises IllegalTransition when the table forbids any of the moves; returns False when
    the row was no longer in `from_states` (someone else moved it first).
    """
    model = type(obj)
    sources = list(from_states)
    table = _table_for(model)
    bad = [s for s in sources if to not in table[s]]
    if bad:
        raise IllegalTransition(f"{model.__name__} cannot go from {bad} to {to}")
    field: str = getattr(model, "STATE_FIELD", "status")
    rows = model._default_manager.filter(pk=obj.pk, **{f"{field}__in": sources})
    updated = rows.filter(when or Q()).update(**{field: to}, **fields)
    if updated:
        setattr(obj, field, to)
        for name, value in fields.items():
            setattr(obj, name, value)
    return bool(updated)
