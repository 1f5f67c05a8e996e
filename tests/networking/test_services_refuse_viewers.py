"""Every mutating networking service refuses a viewer, whatever the view forgot to check,
and changes nothing."""

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User

from networking import services
from networking.models import Firewall, Network, Port
from portal.actor import Actor
from portal.errors import Forbidden
from portal.models import AuditEntry, Organisation
from provisioning.models import Region
from tests.networking.conftest import default_firewall


def snapshot() -> tuple[list[tuple], list[tuple], int, int]:
    return (
        list(Network.objects.order_by("pk").values_list("pk", "name", "deleted_at")),
        list(Firewall.objects.order_by("pk").values_list("pk", "name", "rules", "revision")),
        Port.objects.count(),
        AuditEntry.objects.count(),
    )


@pytest.fixture
def viewer(charlie: User, acme: Organisation) -> Actor:
    return Actor(user=charlie, organisation=acme)


@pytest.fixture
def extra_firewall(acme_net: Network, acme: Organisation, alice: User) -> Firewall:
    return services.create_firewall(
        Actor(user=alice, organisation=acme), acme, acme_net, "extra", []
    )


CALLS: dict[str, Callable[..., object]] = {
    "create_network": lambda actor, acme, region, net, fw: services.create_network(
        actor, acme, region, "new", "10.99.0.0/24"
    ),
    "delete_network": lambda actor, acme, region, net, fw: services.delete_network(actor, net),
    "create_firewall": lambda actor, acme, region, net, fw: services.create_firewall(
        actor, acme, net, "new", []
    ),
    "update_firewall": lambda actor, acme, region, net, fw: services.update_firewall(
        actor, fw, name="renamed", rule_list=[]
    ),
    "delete_firewall": lambda actor, acme, region, net, fw: services.delete_firewall(actor, fw),
    "default_network": lambda actor, acme, region, net, fw: services.default_network(
        actor, acme, Region.objects.create(slug="us-1", name="US 1")
    ),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_viewer_is_refused_and_nothing_changes(
    name: str,
    viewer: Actor,
    acme: Organisation,
    region: Region,
    acme_net: Network,
    extra_firewall: Firewall,
) -> None:
    before = snapshot()
    with pytest.raises(Forbidden):
        CALLS[name](viewer, acme, region, acme_net, extra_firewall)
    assert snapshot() == before


def test_another_organisations_owner_is_refused_too(
    bob: User, bobco: Organisation, acme_net: Network
) -> None:
    outsider = Actor(user=bob, organisation=bobco)
    before = snapshot()
    with pytest.raises(Forbidden):
        services.delete_firewall(outsider, default_firewall(acme_net))
    with pytest.raises(Forbidden):
        services.delete_network(outsider, acme_net)
    assert snapshot() == before
