"""Regions, sizes and K3s versions: what any signed-in user can choose from."""

from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from pytest_django import DjangoAssertNumQueries
from rest_framework.test import APIClient

from portal.models import Organisation
from provisioning import demo
from provisioning.models import BaseImage, K3sVersion, NodeSize, Region

pytestmark = pytest.mark.django_db

ApiFor = Callable[[User, Organisation], APIClient]


@pytest.fixture
def catalogue(tmp_path: Path) -> None:
    demo.seed(tmp_path)


@pytest.mark.usefixtures("catalogue")
def test_lists_for_a_customer(charlie: User, acme: Organisation, api_for: ApiFor) -> None:
    client = api_for(charlie, acme)  # even a viewer may see what is on offer

    regions = client.get("/api/v1/regions")
    sizes = client.get("/api/v1/sizes")
    versions = client.get("/api/v1/k3s-versions")

    assert regions.status_code == sizes.status_code == versions.status_code == 200
    assert regions.json()["results"] == [{"slug": "demo", "name": "Demo"}]
    assert sizes.json()["results"][0] == {
        "slug": "small",
        "vcpus": 1,
        "memory_mib": 2048,
        "disk_gib": 20,
        "monthly_price": "10.00",
    }
    assert [s["slug"] for s in sizes.json()["results"]] == ["small", "medium", "large"]
    assert versions.json()["results"] == [
        {"slug": "v1.31.4+k3s1", "version": "v1.31.4+k3s1", "default": True, "regions": ["demo"]},
        {"slug": "v1.30.8+k3s1", "version": "v1.30.8+k3s1", "default": False, "regions": ["demo"]},
    ]


@pytest.mark.parametrize("path", ["/api/v1/regions", "/api/v1/sizes", "/api/v1/k3s-versions"])
def test_anonymous_gets_401(db: None, path: str) -> None:
    assert APIClient().get(path).status_code == 401


def test_lists_run_a_constant_number_of_queries(
    alice: User,
    acme: Organisation,
    api_for: ApiFor,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    for n in range(12):
        region = Region.objects.create(slug=f"r{n}", name=f"Region {n}")
        NodeSize.objects.create(
            slug=f"s{n}", vcpus=n + 1, memory_mib=1024, disk_gib=10, monthly_price=n
        )
        version = K3sVersion.objects.create(version=f"v1.{n}.0+k3s1")
        BaseImage.objects.create(version=version, region=region, volume_name=f"base-{n}.qcow2")
    client = api_for(alice, acme)
    for path in ("/api/v1/regions", "/api/v1/sizes", "/api/v1/k3s-versions"):
        # Token lookup and last-used stamp, then the list (+ prefetches for versions).
        with django_assert_max_num_queries(6):
            assert client.get(path).json()["count"] == 12
