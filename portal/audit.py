"""Writes the audit log: every mutating service calls `record()` with its actor."""

from typing import Any

from django.db.models import Model

from portal.actor import Actor
from portal.models import AuditEntry, Organisation


def record(
    action: str,
    target: Model,
    actor: Actor,
    *,
    organisation: Organisation | None = None,
    **details: Any,
) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor.user,
        organisation=organisation,
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(getattr(target, "uuid", target.pk)),
        target_repr=str(target)[:200],
        ip_address=actor.address,
        via=actor.via,
        details=details,
    )
