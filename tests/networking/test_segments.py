"""VXLAN segments: per region, unique, from the configured range, exhaustion is an error."""

import pytest
from django.core.exceptions import ValidationError

from networking import services
from networking.models import Network
from portal.models import Organisation
from provisioning.models import Region
from tests.networking.conftest import owner


def test_same_cidr_in_two_organisations_gets_two_segments(
    acme: Organisation, bobco: Organisation, region: Region
) -> None:
    a = services.create_network(owner(acme), acme, region, "web", "10.0.0.0/24")
    b = services.create_network(owner(bobco), bobco, region, "web", "10.0.0.0/24")
    assert a.cidr == b.cidr
    assert a.segment_id != b.segment_id
    assert (a.bridge, a.libvirt_name) != (b.bridge, b.libvirt_name)


def test_lowest_free_segment_from_the_configured_range(
    acme: Organisation, region: Region, settings
) -> None:
    settings.NETWORK_VNI_MIN, settings.NETWORK_VNI_MAX = 5000, 5002
    first = services.create_network(owner(acme), acme, region, "a", "10.0.0.0/24")
    second = services.create_network(owner(acme), acme, region, "b", "10.0.1.0/24")
    assert (first.segment_id, second.segment_id) == (5000, 5001)
    Network.objects.filter(pk=first.pk).delete()  # nothing uses it: its VNI is free again
    assert services.create_network(owner(acme), acme, region, "c", "10.0.2.0/24").segment_id == (
        5000
    )


def test_segments_are_per_region(acme: Organisation, region: Region, settings) -> None:
    settings.NETWORK_VNI_MIN, settings.NETWORK_VNI_MAX = 7000, 7000
    other = Region.objects.create(slug="us-1", name="US 1")
    a = services.create_network(owner(acme), acme, region, "a", "10.0.0.0/24")
    b = services.create_network(owner(acme), acme, other, "b", "10.0.0.0/24")
    assert a.segment_id == b.segment_id == 7000


def test_exhaustion_is_a_clear_error_and_creates_nothing(
    acme: Organisation, bobco: Organisation, region: Region, settings
) -> None:
    settings.NETWORK_VNI_MIN, settings.NETWORK_VNI_MAX = 6000, 6000
    services.create_network(owner(acme), acme, region, "a", "10.0.0.0/24")
    with pytest.raises(ValidationError) as caught:
        services.create_network(owner(bobco), bobco, region, "b", "10.0.0.0/24")
    assert "No free network segment left in eu-1" in caught.value.message_dict["region"][0]
    assert not Network.objects.filter(organisation=bobco).exists()


def test_network_quota(acme: Organisation, region: Region) -> None:
    acme.quota.networks = 1
    acme.quota.save()
    services.create_network(owner(acme), acme, region, "a", "10.0.0.0/24")
    with pytest.raises(ValidationError) as caught:
        services.create_network(owner(acme), acme, region, "b", "10.0.1.0/24")
    assert "may have 1 networks" in caught.value.message_dict["quota"][0]


def test_each_network_gets_a_default_firewall(acme: Organisation, region: Region) -> None:
    network = services.create_network(owner(acme), acme, region, "web", "10.3.0.0/24")
    firewall = network.firewalls.get()
    assert firewall.is_default and firewall.name == "web-fw"
    assert {"direction": "ingress", "protocol": "tcp", "ports": "6443", "cidr": "0.0.0.0/0",
            "label": "Kubernetes API"} in firewall.rules  # fmt: skip
