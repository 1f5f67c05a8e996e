"""portal.access: scoping to the user's organisations and role checks."""

import pytest
from django.contrib.auth.models import AnonymousUser, User

from portal import access
from portal.actor import Action, Actor
from portal.errors import Forbidden
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
    one = access.for_user(Organisation.objects.all(), alice, organisation=bobco)
    assert both.count() == 2
    assert list(one) == [bobco]


def test_for_user_scopes_by_the_actions_least_role(
    alice: User, charlie: User, bob: User, acme: Organisation
) -> None:
    organisations = Organisation.objects.all()
    assert list(access.for_user(organisations, charlie, "view")) == [acme]
    assert list(access.for_user(organisations, charlie, "change")) == []
    assert list(access.for_user(organisations, alice, "admin")) == [acme]
    assert list(access.for_user(organisations, bob, "view").filter(pk=acme.pk)) == []


def test_actor_roles(alice: User, charlie: User, bob: User, acme: Organisation) -> None:
    assert Actor(user=alice).can(Action.ADMIN, acme)
    assert Actor(user=charlie).can(Action.VIEW, acme)
    assert not Actor(user=charlie).can(Action.CHANGE, acme)
    assert not Actor(user=bob).can(Action.VIEW, acme)
    assert not Actor(user=None).can(Action.VIEW, acme)  # anonymous: nobody
    assert Actor.system().can(Action.ADMIN, acme)
    with pytest.raises(Forbidden):
        Actor(user=charlie).require(Action.CHANGE, acme)


def test_a_token_actor_acts_in_its_own_organisation_only(
    alice: User, acme: Organisation, bobco: Organisation
) -> None:
    Membership.objects.create(user=alice, organisation=bobco, role=Role.OWNER)
    assert Actor(user=alice, organisation=acme).can(Action.CHANGE, bobco)
    assert not Actor(user=alice, organisation=acme, bound=True).can(Action.CHANGE, bobco)
