"""Staff pass a second factor (TOTP) before the staff console or the admin let them in:
enrolment with a QR code, a code at each login, wrong codes refused. Customers never see it."""

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import AuditEntry

pytestmark = pytest.mark.django_db

PAGES = ("/staff/hypervisors/", "/admin/")


def code(device: TOTPDevice, drift: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, digits=device.digits, drift=drift):06d}"


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def test_staff_enrol_once_then_confirm_a_code_each_session(staff: User) -> None:
    client = logged_in(staff)
    for page in PAGES:  # the admin goes by its login page, which sends staff on
        response = client.get(page, follow=True)
        assert response.redirect_chain[-1][0].startswith("/accounts/second-factor/?next=")
    enrol = client.get("/accounts/second-factor/?next=/staff/hypervisors/")
    assert enrol.status_code == 200
    assert b"<svg" in enrol.content and b"Set up your second factor" in enrol.content
    [device] = TOTPDevice.objects.filter(user=staff, confirmed=False)
    secret = re.search(rb"<code>([A-Z2-7=]+)</code>", enrol.content)
    assert secret is not None  # the key, for typing into an app

    wrong = client.post("/accounts/second-factor/", {"code": "000000", "next": "/admin/"})
    assert wrong.status_code == 400 and client.get("/admin/").status_code != 200
    # After a wrong code the device is throttled for a moment: even the right one fails.
    right = {"code": code(device), "next": "/admin/"}
    assert client.post("/accounts/second-factor/", right).status_code == 400
    device.refresh_from_db()
    device.throttle_reset()  # the moment has passed
    done = client.post("/accounts/second-factor/", {"code": code(device), "next": "/admin/"})
    assert done.status_code == 302 and done["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/staff/hypervisors/").status_code == 200
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    assert AuditEntry.objects.filter(action="staff.second_factor_enrol").count() == 1

    # A new session asks for a code again, and enrols nothing new.
    again = logged_in(staff)
    assert again.get("/staff/hypervisors/").status_code == 302
    prompt = again.get("/accounts/second-factor/")
    assert b"<svg" not in prompt.content and b"Enter the code" in prompt.content
    device.refresh_from_db()
    next_code = code(device, drift=1)  # the previous code is spent (no replay)
    assert again.post("/accounts/second-factor/", {"code": next_code}).status_code == 302
    assert again.get("/staff/hypervisors/").status_code == 200
    assert TOTPDevice.objects.filter(user=staff).count() == 1


def test_an_outside_next_is_not_followed(staff: User) -> None:
    client = logged_in(staff)
    client.get("/accounts/second-factor/")
    device = TOTPDevice.objects.get(user=staff)
    response = client.post(
        "/accounts/second-factor/", {"code": code(device), "next": "https://evil.example/"}
    )
    assert response.status_code == 302 and response["Location"] == "/staff/hypervisors/"


def test_customers_never_meet_it(alice: User) -> None:
    client = logged_in(alice)
    assert client.get("/accounts/second-factor/").status_code == 404
    assert client.get("/staff/hypervisors/").status_code == 404
    assert client.get("/clusters/").status_code == 200
