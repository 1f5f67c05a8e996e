"""Owners invite, re-role and remove members; others may not."""

import re

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse

from portal.models import AuditEntry, Invitation, Membership, Organisation, Role

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
    remove = reverse("portal:member_remove", args=[membership.uuid])
    client.post(remove)  # not confirmed: nothing happens
    assert Membership.objects.filter(pk=membership.pk).exists()
    page = client.get(reverse("portal:member_list")).content.decode()
    assert "Confirm removing charlie first." in page
    assert "<summary>Remove</summary>" in page  # the confirmation step on the page
    client.post(remove, {"confirm": "charlie"})
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


def invite(client, email: str = "dan@example.com") -> str:
    client.post(reverse("portal:member_list"), {"email": email, "role": "member"})
    found = re.search(r"http://testserver(\S+)", str(mail.outbox[-1].body))
    assert found is not None
    return found.group(1)


def test_an_invitation_survives_signing_up(alice: User, acme: Organisation, browser_for) -> None:
    link = invite(browser_for(alice))
    visitor = Client()
    to_login = visitor.get(link)
    assert to_login.status_code == 302 and to_login["Location"].startswith("/accounts/login/")
    login_page = visitor.get(to_login["Location"]).content.decode()
    signup = re.search(r'href="(/accounts/signup/\?next=[^"]+)"', login_page)
    assert signup is not None  # the way to sign up keeps where the visitor was going
    form = visitor.get(signup.group(1).replace("&amp;", "&"))
    assert b"Optional: you are joining an organisation by invitation." in form.content
    joined = visitor.post(
        signup.group(1).replace("&amp;", "&"),
        {
            "username": "dan",
            "email": "dan@example.com",
            "password1": "dan-pass-12345",
            "password2": "dan-pass-12345",
            "next": link,
        },
    )
    assert joined.status_code == 302 and joined["Location"] == link  # back to the invitation
    assert visitor.post(link).status_code == 302
    dan = User.objects.get(username="dan")
    assert list(Membership.objects.filter(user=dan).values_list("organisation", "role")) == [
        (acme.pk, Role.MEMBER)
    ]  # no organisation of their own was made


def test_pending_invitations_are_resent_and_revoked(alice: User, bob: User, browser_for) -> None:
    owner = browser_for(alice)
    first = invite(owner)
    invitation = Invitation.objects.get()
    owner.post(reverse("portal:invitation_resend", args=[invitation.uuid]))
    assert len(mail.outbox) == 2
    second = re.search(r"http://testserver(\S+)", str(mail.outbox[-1].body))
    assert second is not None and second.group(1) != first
    dan = User.objects.create_user("dan", "dan@example.com", "dan-pass-123")
    assert browser_for(dan).get(first).status_code == 404  # the old link is dead
    assert browser_for(dan).get(second.group(1)).status_code == 200
    # Another organisation's owner cannot touch it.
    revoke = reverse("portal:invitation_revoke", args=[invitation.uuid])
    assert browser_for(bob).post(revoke).status_code == 404
    owner.post(revoke)
    assert not Invitation.objects.exists()
    assert browser_for(dan).get(second.group(1)).status_code == 404
    assert {"invitation.resend", "invitation.revoke"} <= set(
        AuditEntry.objects.values_list("action", flat=True)
    )
