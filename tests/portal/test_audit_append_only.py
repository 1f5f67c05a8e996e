"""The audit log cannot be forged or edited: not in the admin (for staff neither), and on
PostgreSQL not below the ORM either."""

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction
from django.test import Client

from portal import audit
from portal.actor import Actor, Via
from portal.models import AuditEntry, Organisation
from tests import second_factor

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry(alice: User, acme: Organisation) -> AuditEntry:
    return audit.record(
        "organisation.rename", acme, Actor(user=alice, organisation=acme), organisation=acme
    )


def test_the_admin_offers_no_add_change_or_delete(entry: AuditEntry) -> None:
    client = Client()
    second_factor.verified(
        client, User.objects.create_superuser("root", "root@example.com", "root-pass-1")
    )
    base = "/admin/portal/auditentry/"
    assert client.get(base).status_code == 200  # reading is fine
    assert client.get(f"{base}add/").status_code == 403
    forged = {"action": "cluster.delete", "target_repr": "x", "actor": "", "via": "web"}
    assert client.post(f"{base}add/", forged).status_code == 403
    assert client.post(f"{base}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    change = client.get(f"{base}{entry.pk}/change/")
    assert change.status_code == 200 and b'name="_save"' not in change.content  # read-only
    assert not AuditEntry.objects.filter(action="cluster.delete").exists()
    assert AuditEntry.objects.get(pk=entry.pk).action == "organisation.rename"


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the database guard is PostgreSQL's (CI runs it)"
)
def test_postgresql_refuses_changes_and_deletions_but_lets_a_user_go(
    entry: AuditEntry, alice: User
) -> None:
    for forge in (
        lambda: AuditEntry.objects.filter(pk=entry.pk).update(action="cluster.delete"),
        lambda: AuditEntry.objects.filter(pk=entry.pk).update(via=Via.COMMAND),
        lambda: AuditEntry.objects.filter(pk=entry.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            forge()
    entry.refresh_from_db()
    assert entry.action == "organisation.rename"
    alice.delete()  # ON DELETE SET NULL empties the reference, and only that
    entry.refresh_from_db()
    assert entry.actor_id is None and entry.action == "organisation.rename"
