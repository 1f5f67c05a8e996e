"""Owners invite, re-role and remove members; others may not."""

import re

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.urls import reverse

from portal.models import AuditEntry, Membership, Organisation, Role

pytestmark = pytest.mark.django_db


def test_owner_invites_and_invitee_accepts(alice: User, acme: Organisation, browser_for) -> None:
    response = browser_for(alice).post(
        reverse("portal:member_list"), {"email": "dan@example.com", "role": "admin"}
    )
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    found = re.search(r"http://\S+", str(mail.outbox[0].body))
    assert found is not None
    link = found.group(0)
    dan = User.objects.create_user("dan", "dan@example.com", "dan-pass-123")
    client = browser_for(dan)
    assert client.get(link).status_code == 200
    assert client.post(link).status_code == 302
    assert Membership.objects.get(user=dan, organisation=acme).role == Role.ADMIN
    assert client.post(link).status_code == 404  # used once only
    assert AuditEntry.objects.filter(action="invitation.accept", actor=dan).exists()


def test_viewer_cannot_invite(charlie: User, browser_for) -> None:
    response = browser_for(charlie).post(
        reverse("portal:member_list"), {"email": "x@example.com", "role": "owner"}
    )
    assert response.status_code == 403
    assert not mail.outbox


def test_owner_changes_role_and_removes(alice: User, charlie: User, browser_for) -> None:
    client = browser_for(alice)
    membership = Membership.objects.get(user=charlie)
    client.post(reverse("portal:member_role", args=[membership.uuid]), {"role": "member"})
    membership.refresh_from_db()
    assert membership.role == Role.MEMBER
    client.post(reverse("portal:member_remove", args=[membership.uuid]))
    assert not Membership.objects.filter(pk=membership.pk).exists()
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"membership.role", "membership.remove"} <= actions


def test_last_owner_stays(alice: User, browser_for) -> None:
    own = Membership.objects.get(user=alice)
    browser_for(alice).post(reverse("portal:member_role", args=[own.uuid]), {"role": "viewer"})
    own.refresh_from_db()
    assert own.role == Role.OWNER


def test_viewer_cannot_change_roles(charlie: User, alice: User, browser_for) -> None:
    own = Membership.objects.get(user=alice)
    response = browser_for(charlie).post(
        reverse("portal:member_role", args=[own.uuid]), {"role": "viewer"}
    )
    assert response.status_code == 403


def test_foreign_membership_is_404(bob: User, alice: User, browser_for) -> None:
    own = Membership.objects.get(user=alice)
    response = browser_for(bob).post(reverse("portal:member_remove", args=[own.uuid]))
    assert response.status_code == 404
    assert Membership.objects.filter(pk=own.pk).exists()
