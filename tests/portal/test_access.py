"""portal.access: scoping to the user's organisations and role checks."""

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied

from portal import access
from portal.models import ApiToken, Membership, Organisation, Role

pytestmark = pytest.mark.django_db


def test_for_user_sees_only_own_organisations(alice: User, bob: User) -> None:
    assert list(
        access.for_user(Organisation.objects.all(), alice).values_list("slug", flat=True)
    ) == ["acme"]
    assert access.for_user(Organisation.objects.all(), AnonymousUser()).count() == 0


def test_for_user_follows_organisation_path(alice: User, bob: User, api_for, acme, bobco) -> None:
    api_for(alice, acme)
    api_for(bob, bobco)
    mine = access.for_user(ApiToken.objects.all(), alice)
    assert {t.organisation.slug for t in mine} == {"acme"}


def test_for_user_restricted_to_one_organisation(alice: User, bob: User, bobco) -> None:
    Membership.objects.create(user=alice, organisation=bobco, role=Role.MEMBER)
    both = access.for_user(Organisation.objects.all(), alice)
    one = access.for_user(Organisation.objects.all(), alice, bobco)
    assert both.count() == 2
    assert list(one) == [bobco]


def test_require_role(alice: User, charlie: User, bob: User, acme: Organisation) -> None:
    assert access.require_role(alice, acme, Role.OWNER) == Role.OWNER
    assert access.require_role(charlie, acme, Role.VIEWER) == Role.VIEWER
    with pytest.raises(PermissionDenied):
        access.require_role(charlie, acme, Role.MEMBER)
    with pytest.raises(PermissionDenied):
        access.require_role(bob, acme, Role.VIEWER)
