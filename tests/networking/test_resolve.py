"""resolve_for_cluster: what a new cluster joins, only from the caller's organisation."""

import pytest
from django.core.exceptions import ValidationError

from networking import services
from networking.models import Firewall, Network
from portal.models import Organisation
from provisioning.models import Region
from provisioning.states import ClusterStatus
from tests.networking.conftest import default_firewall, owner


def test_default_network_is_created_once_per_region(acme: Organisation, region: Region) -> None:
    network, firewall = services.resolve_for_cluster(owner(acme), acme, region, None, None)
    assert (network.name, network.cidr, network.gateway, network.is_default) == (
        "default",
        "10.0.0.0/24",
        "10.0.0.1",
        True,
    )
    assert firewall == default_firewall(network)
    assert services.resolve_for_cluster(owner(acme), acme, region, None, None) == (
        network,
        firewall,
    )
    other = Region.objects.create(slug="us-1", name="US 1")
    second, _ = services.resolve_for_cluster(owner(acme), acme, other, None, None)
    assert second != network and second.name == "default-us-1"


def test_given_network_and_firewall(acme: Organisation, acme_net: Network, region: Region) -> None:
    firewall = services.create_firewall(owner(acme), acme, acme_net, "strict", [])
    assert services.resolve_for_cluster(
        owner(acme), acme, region, str(acme_net.uuid), str(firewall.uuid)
    ) == (
        acme_net,
        firewall,
    )
    assert services.resolve_for_cluster(owner(acme), acme, region, str(acme_net.uuid), None)[1] == (
        default_firewall(acme_net)
    )


def test_another_organisations_ids_are_refused(
    acme_net: Network, bobco: Organisation, region: Region
) -> None:
    bob_net = services.create_network(owner(bobco), bobco, region, "b", "10.0.0.0/24")
    with pytest.raises(ValidationError) as caught:
        services.resolve_for_cluster(owner(bobco), bobco, region, str(acme_net.uuid), None)
    assert "network" in caught.value.message_dict
    acme_fw = Firewall.objects.get(network=acme_net)
    with pytest.raises(ValidationError) as caught:
        services.resolve_for_cluster(
            owner(bobco), bobco, region, str(bob_net.uuid), str(acme_fw.uuid)
        )
    assert "firewall" in caught.value.message_dict


def test_wrong_region_foreign_firewall_and_garbage(
    acme: Organisation, acme_net: Network, region: Region
) -> None:
    other = Region.objects.create(slug="us-1", name="US 1")
    with pytest.raises(ValidationError, match="another region"):
        services.resolve_for_cluster(owner(acme), acme, other, str(acme_net.uuid), None)
    second = services.create_network(owner(acme), acme, region, "db", "10.30.0.0/24")
    with pytest.raises(ValidationError, match="belongs to another network"):
        services.resolve_for_cluster(
            owner(acme), acme, region, str(acme_net.uuid), str(default_firewall(second).uuid)
        )
    with pytest.raises(ValidationError) as caught:
        services.resolve_for_cluster(owner(acme), acme, region, "not-a-uuid", None)
    assert "network" in caught.value.message_dict


def test_networking_names_provisionings_deleted_status_right() -> None:
    # networking reads clusters through reverse relations with this string, not the enum.
    assert services.CLUSTER_DELETED == ClusterStatus.DELETED
