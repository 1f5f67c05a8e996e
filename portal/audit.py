"""Writes the audit log: every mutating action calls `record()`."""

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Model
from django.http import HttpRequest

from portal.models import AuditEntry, Organisation


def client_address(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record(
    action: str,
    target: Model,
    *,
    actor: User | AnonymousUser | None = None,
    organisation: Organisation | None = None,
    request: HttpRequest | None = None,
    **details: Any,
) -> AuditEntry:
    if actor is None and request is not None:
        actor = request.user
    return AuditEntry.objects.create(
        actor=actor if isinstance(actor, User) else None,
        organisation=organisation,
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(getattr(target, "uuid", target.pk)),
        target_repr=str(target)[:200],
        ip_address=client_address(request),
        details=details,
    )
