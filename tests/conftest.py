"""Shared fixtures: the personas of DESIGN.md and authenticated clients.

alice (owner, acme), bob (owner, bobco), charlie (viewer, acme), staff.
"""

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from rest_framework.test import APIClient

from cloud.celery import app as celery_app
from portal import organisations, tokens
from portal.models import Membership, Organisation, Role
from provisioning import recently
from tests import second_factor
from tests.webhook_receiver import Receiver


def pytest_configure(config: pytest.Config) -> None:
    # A fresh DATA_DIR (CI) has no secrets until `init_secrets` runs, and settings never
    # write them: the run gets throwaway ones (subprocesses run init_secrets or `serve`).
    try:
        settings.SECRET_KEY  # noqa: B018  (raises when empty)
    except ImproperlyConfigured:
        settings.SECRET_KEY = secrets.token_urlsafe(50)
    if not settings.FERNET_KEYS:
        settings.FERNET_KEYS = [Fernet.generate_key().decode()]


@pytest.fixture(autouse=True, scope="session")
def eager_celery() -> None:
    # Tasks run in-process in tests; `transaction.on_commit` still defers them to commit.
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True


@pytest.fixture(autouse=True)
def nothing_kept() -> None:
    """Each test reads its own launch history and catalogue (provisioning.recently keeps
    them a few seconds per process)."""
    recently.forget_all()


@pytest.fixture
def alice(db: None) -> User:
    user = User.objects.create_user("alice", "alice@example.com", "alice-pass-123")
    organisations.create_organisation(user, "Acme", slug="acme")
    return user


@pytest.fixture
def acme(alice: User) -> Organisation:
    return Organisation.objects.get(slug="acme")


@pytest.fixture
def bob(db: None) -> User:
    user = User.objects.create_user("bob", "bob@example.com", "bob-pass-123")
    organisations.create_organisation(user, "Bobco", slug="bobco")
    return user


@pytest.fixture
def bobco(bob: User) -> Organisation:
    return Organisation.objects.get(slug="bobco")


@pytest.fixture
def charlie(acme: Organisation) -> User:
    user = User.objects.create_user("charlie", "charlie@example.com", "charlie-pass-123")
    Membership.objects.create(user=user, organisation=acme, role=Role.VIEWER)
    return user


@pytest.fixture
def staff(db: None) -> User:
    return User.objects.create_user("staff", "staff@example.com", "staff-pass-123", is_staff=True)


@pytest.fixture
def api_for() -> Callable[[User, Organisation], APIClient]:
    """An API client that authenticates with a fresh bearer token."""

    def make(user: User, organisation: Organisation) -> APIClient:
        _, raw = tokens.issue(user, organisation, "test", None)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


@pytest.fixture
def browser_for() -> Callable[[User], Client]:
    """A Django test client with the user's session."""

    def make(user: User) -> Client:
        """Staff have passed their second factor too (tests/portal/test_second_factor.py
        covers the code itself)."""
        client = Client()
        if user.is_staff:
            return second_factor.verified(client, user)
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return client

    return make


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1, which staff allow for the test (loopback is
    refused otherwise)."""
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    with Receiver() as running:
        yield running
