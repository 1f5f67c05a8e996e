"""API tokens: hashed at rest, shown once, expiry, revocation, 401 behaviour, the CLI."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from portal import tokens
from portal.models import ApiToken, AuditEntry, Membership, Organisation, Role

pytestmark = pytest.mark.django_db(transaction=True)


def _bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _database_text() -> str:
    """Every text value in every table, to look for a secret."""
    chunks: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608  (table names from the schema)
            chunks.extend(str(value) for row in cursor.fetchall() for value in row)
    return "\n".join(chunks)


def test_ui_shows_raw_token_once_and_stores_only_its_hash(alice: User, browser_for) -> None:
    client = browser_for(alice)
    page = client.post(reverse("portal:token_list"), {"name": "ci", "lifetime_days": "30"})
    raw = page.context["raw_token"]
    assert raw.startswith("k3sp_") and raw in page.content.decode()
    assert raw not in _database_text()
    token = ApiToken.objects.get(name="ci")
    assert token.digest == tokens.digest(raw)
    assert token.expires_at is not None
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    assert raw not in client.get(reverse("portal:token_list")).content.decode()
    assert AuditEntry.objects.filter(action="token.create", actor=alice).exists()


def test_api_accepts_token_and_records_last_use(alice: User, acme: Organisation) -> None:
    token, raw = tokens.issue(alice, acme, "t", timedelta(days=1))
    response = _bearer(raw).get("/api/v1/clusters")
    assert response.status_code == 200
    assert response.json()["results"] == []
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.parametrize("header", ["", "Bearer nope", "Bearer ", "Basic abc"])
def test_bad_or_missing_credentials_are_401(alice: User, header: str) -> None:
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/clusters")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated" and "detail" in response.json()


def test_expired_token_is_401(alice: User, acme: Organisation) -> None:
    token, raw = tokens.issue(alice, acme, "t", timedelta(days=1))
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _bearer(raw).get("/api/v1/clusters").status_code == 401


def test_revoked_token_is_401(alice: User, acme: Organisation, browser_for) -> None:
    token, raw = tokens.issue(alice, acme, "t", None)
    assert _bearer(raw).get("/api/v1/clusters").status_code == 200
    browser_for(alice).post(reverse("portal:token_revoke", args=[token.uuid]))
    assert _bearer(raw).get("/api/v1/clusters").status_code == 401


def test_cannot_revoke_someone_elses_token(alice: User, bob: User, bobco, browser_for) -> None:
    token, raw = tokens.issue(bob, bobco, "t", None)
    response = browser_for(alice).post(reverse("portal:token_revoke", args=[token.uuid]))
    assert response.status_code == 404
    assert _bearer(raw).get("/api/v1/clusters").status_code == 200


def test_token_of_a_removed_member_is_401(charlie: User, acme: Organisation) -> None:
    _, raw = tokens.issue(charlie, acme, "t", None)
    Membership.objects.filter(user=charlie).delete()
    assert _bearer(raw).get("/api/v1/clusters").status_code == 401


def test_token_acts_in_its_own_organisation(alice: User, bob: User, bobco: Organisation):
    Membership.objects.create(user=alice, organisation=bobco, role=Role.VIEWER)
    _, raw = tokens.issue(alice, bobco, "t", None)
    me = _bearer(raw).get("/api/v1/me").json()
    assert me["organisation"] == "bobco"
    assert {o["slug"] for o in me["organisations"]} == {"acme", "bobco"}


def test_create_token_command_creates_everything(db: None) -> None:
    out = StringIO()
    call_command("create_token", "zed", "--org", "zedcorp", "--create", "--staff", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    user = User.objects.get(username="zed")
    assert user.is_staff
    assert Membership.objects.get(user=user).role == Role.OWNER
    assert _bearer(raw).get("/api/v1/me").json()["organisation"] == "zedcorp"


def test_create_token_command_with_role_and_without_create(alice: User, acme) -> None:
    out = StringIO()
    call_command(
        "create_token", "newbie", "--org", "acme", "--create", "--role", "viewer", stdout=out
    )
    assert Membership.objects.get(user__username="newbie", organisation=acme).role == Role.VIEWER
    with pytest.raises(Exception, match="No user"):
        call_command("create_token", "ghost", "--org", "acme", stdout=StringIO())
