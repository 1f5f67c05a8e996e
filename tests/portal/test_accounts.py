"""Sign-up, log-in, rate limiting of failed log-ins, organisation switching."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from portal.models import Membership, Organisation, Role

pytestmark = pytest.mark.django_db


def test_login_page_and_successful_login(alice: User) -> None:
    client = Client()
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-pass-123"})
    assert response.status_code == 302
    assert client.get(reverse("portal:token_list")).status_code == 200


def test_pages_need_login(db: None) -> None:
    response = Client().get(reverse("portal:token_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_logout_is_a_post(alice: User, browser_for) -> None:
    client = browser_for(alice)
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("portal:token_list")).status_code == 302


def test_failed_logins_are_rate_limited(alice: User) -> None:
    client = Client()
    for _ in range(4):
        response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    fifth = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert fifth.status_code == 429
    locked = client.post(reverse("login"), {"username": "alice", "password": "alice-pass-123"})
    assert locked.status_code == 429
    assert not client.session.get("_auth_user_id")


def test_signup_creates_user_organisation_and_owner_membership(db: None) -> None:
    client = Client()
    response = client.post(
        reverse("signup"),
        {
            "username": "dora",
            "email": "dora@example.com",
            "organisation": "Dora Labs",
            "password1": "a-long-pass-phrase-42",
            "password2": "a-long-pass-phrase-42",
        },
    )
    assert response.status_code == 302
    membership = Membership.objects.get(user__username="dora")
    assert membership.role == Role.OWNER
    assert membership.organisation.slug == "dora-labs"
    assert membership.organisation.quota.nodes >= 40
    assert membership.organisation.quota.vcpus >= 80


def test_signup_errors_create_nothing(db: None) -> None:
    response = Client().post(
        reverse("signup"),
        {"username": "eve", "email": "bad", "organisation": "Eve", "password1": "x"},
    )
    assert response.status_code == 200
    assert b"Enter a valid email address" in response.content
    assert not User.objects.filter(username="eve").exists()
    assert not Organisation.objects.filter(name="Eve").exists()


def test_switching_organisation(alice: User, bob: User, bobco: Organisation, browser_for) -> None:
    Membership.objects.create(user=alice, organisation=bobco, role=Role.MEMBER)
    client = browser_for(alice)
    page = client.get(reverse("portal:token_list"))
    assert page.context["organisation"].slug == "acme"
    client.post(reverse("portal:switch_organisation"), {"organisation": str(bobco.uuid)})
    assert client.get(reverse("portal:token_list")).context["organisation"].slug == "bobco"


def test_cannot_switch_to_a_foreign_organisation(alice: User, bobco: Organisation, browser_for):
    response = browser_for(alice).post(
        reverse("portal:switch_organisation"), {"organisation": str(bobco.uuid)}
    )
    assert response.status_code == 404
