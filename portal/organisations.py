"""Business rules for organisations, memberships and invitations."""

import secrets
from collections.abc import Callable
from datetime import timedelta

from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from portal import audit
from portal.actor import Action, Actor
from portal.errors import Forbidden, Invalid
from portal.models import Invitation, Membership, Organisation, Quota, Role
from portal.tokens import digest

INVITATION_LIFETIME = timedelta(days=7)


def unique_slug(name: str) -> str:
    base = slugify(name)[:40] or "org"
    slug, n = base, 1
    while Organisation.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def create_organisation(owner: User, name: str, slug: str | None = None) -> Organisation:
    organisation = Organisation.objects.create(name=name, slug=slug or unique_slug(name))
    Quota.objects.create(organisation=organisation)
    Membership.objects.create(user=owner, organisation=organisation, role=Role.OWNER)
    audit.record("organisation.create", organisation, Actor(user=owner), organisation=organisation)
    return organisation


def _owners(organisation: Organisation) -> int:
    return organisation.memberships.filter(role=Role.OWNER).count()


@transaction.atomic
def change_role(actor: Actor, membership: Membership, role: Role) -> None:
    actor.require(Action.ADMIN, membership.organisation)
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    if locked.role == Role.OWNER and role != Role.OWNER and _owners(locked.organisation) == 1:
        raise Invalid({"role": "An organisation keeps at least one owner."})
    locked.role = role
    locked.save(update_fields=["role"])
    audit.record(
        "membership.role",
        locked,
        actor,
        organisation=locked.organisation,
        role=role.value,
    )


@transaction.atomic
def remove_member(actor: Actor, membership: Membership) -> None:
    actor.require(Action.ADMIN, membership.organisation)
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    if locked.role == Role.OWNER and _owners(locked.organisation) == 1:
        raise Invalid("An organisation keeps at least one owner.")
    audit.record("membership.remove", locked, actor, organisation=locked.organisation)
    locked.delete()


def invite(
    actor: Actor, organisation: Organisation, email: str, role: Role, link: Callable[[str], str]
) -> str:
    """Create an invitation, mail its link (`link(raw token)`), and return the link."""
    actor.require(Action.ADMIN, organisation)
    if actor.user is None:
        raise Forbidden("Invitations come from a user.")
    raw = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organisation=organisation,
        email=email,
        role=role,
        digest=digest(raw),
        invited_by=actor.user,
        expires_at=timezone.now() + INVITATION_LIFETIME,
    )
    url = _mail_invitation(invitation, link(raw))
    audit.record(
        "invitation.create",
        invitation,
        actor,
        organisation=organisation,
        email=email,
        role=role.value,
    )
    return url


def _mail_invitation(invitation: Invitation, url: str) -> str:
    role = Role(invitation.role).label.lower()
    name = invitation.organisation.name
    send_mail(
        f"Join {name} on the K3s portal",
        f"You are invited to join {name} as {role}.\n\n{url}\n",
        None,
        [invitation.email],
    )
    return url


def resend_invitation(actor: Actor, invitation: Invitation, link: Callable[[str], str]) -> str:
    """A new link (the old one stops working) and a new lifetime, mailed again."""
    actor.require(Action.ADMIN, invitation.organisation)
    raw = secrets.token_urlsafe(32)
    with transaction.atomic():
        invitation.digest = digest(raw)
        invitation.expires_at = timezone.now() + INVITATION_LIFETIME
        invitation.save(update_fields=["digest", "expires_at"])
        audit.record("invitation.resend", invitation, actor, organisation=invitation.organisation)
    return _mail_invitation(invitation, link(raw))


def revoke_invitation(actor: Actor, invitation: Invitation) -> None:
    actor.require(Action.ADMIN, invitation.organisation)
    with transaction.atomic():
        audit.record(
            "invitation.revoke",
            invitation,
            actor,
            organisation=invitation.organisation,
            email=invitation.email,
        )
        invitation.delete()


def pending_invitation(raw: str) -> Invitation | None:
    return (
        Invitation.objects.select_related("organisation")
        .filter(digest=digest(raw), accepted_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )


@transaction.atomic
def accept(actor: Actor, invitation: Invitation) -> Membership:
    if actor.user is None:
        raise Forbidden("Sign in to accept an invitation.")
    claimed = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(
        accepted_at=timezone.now()
    )
    if not claimed:
        raise Invalid("This invitation was already used.")
    membership, _ = Membership.objects.get_or_create(
        user=actor.user,
        organisation=invitation.organisation,
        defaults={"role": invitation.role},
    )
    audit.record("invitation.accept", invitation, actor, organisation=invitation.organisation)
    return membership
