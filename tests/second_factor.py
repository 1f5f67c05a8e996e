"""Test sessions of staff who passed their second factor (portal.second_factor)."""

from django.contrib.auth.models import User
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice


def verified(client: Client, user: User) -> Client:
    """`client` logged in as `user` with a confirmed TOTP device, as after entering a code."""
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    device = TOTPDevice.objects.get_or_create(user=user, name="test", confirmed=True)[0]
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def superuser_client() -> Client:
    """A verified session of a new superuser, `root`."""
    root = User.objects.create_superuser("root", "root@example.com", "root-pass-1")
    return verified(Client(), root)
