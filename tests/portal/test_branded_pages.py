"""The pages around the portal's own: errors, password reset, a staff member with no
organisation. All in the portal's style, none Django's or the admin's defaults."""

import re

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client, RequestFactory
from django.views.defaults import server_error

from tests import second_factor

pytestmark = pytest.mark.django_db

BRAND = '<a class="brand"'


def test_not_found_and_not_allowed_are_the_portals_pages(alice: User, charlie: User) -> None:
    client = Client()
    client.force_login(alice)
    missing = client.get("/no/such/page/")
    assert missing.status_code == 404
    html = missing.content.decode()
    assert BRAND in html and "<h1>Not found</h1>" in html and "Log out" in html
    viewer = Client()
    viewer.force_login(charlie)  # acme's viewer
    refused = viewer.post("/networks/", {"name": "x", "cidr": "10.9.0.0/24", "region": "demo"})
    assert refused.status_code == 403
    assert BRAND in refused.content.decode() and "<h1>Not allowed</h1>" in refused.content.decode()


def test_a_server_error_page_needs_no_context() -> None:
    response = server_error(RequestFactory().get("/"))
    html = response.content.decode()
    assert response.status_code == 500
    assert BRAND in html and "Something went wrong" in html and "portal.css" in html


def test_a_staff_member_without_an_organisation_is_told_so(staff: User) -> None:
    client = second_factor.verified(Client(), staff)
    home = client.get("/", follow=True).content.decode()
    assert "You are staff and a member of no organisation" in home
    assert 'href="/staff/hypervisors/"' in home
    networks = client.get("/networks/")
    assert networks.status_code == 404
    assert "You do not belong to an organisation." in networks.content.decode()


def test_password_reset_in_the_portals_style_end_to_end(alice: User) -> None:
    client = Client()
    form = client.get("/accounts/password_reset/").content.decode()
    assert BRAND in form and "Reset your password" in form and "Django administration" not in form
    sent = client.post("/accounts/password_reset/", {"email": "alice@example.com"}, follow=True)
    assert "Check your email" in sent.content.decode()
    [message] = mail.outbox
    assert message.subject == "Your K3s cloud password"
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", str(message.body))
    assert link is not None
    choose = client.get(link.group(1), follow=True)
    assert "Choose a new password" in choose.content.decode()
    done = client.post(
        choose.redirect_chain[-1][0],
        {"new_password1": "a-new-pass-4711", "new_password2": "a-new-pass-4711"},
        follow=True,
    )
    assert "Password set" in done.content.decode()
    alice.refresh_from_db()
    assert alice.check_password("a-new-pass-4711")
    used = client.get(link.group(1), follow=True).content.decode()
    assert "This link no longer works" in used
