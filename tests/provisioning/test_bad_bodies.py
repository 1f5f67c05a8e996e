"""Bodies no parser can take are 400s, never 500s, and create nothing."""

from typing import Any

import pytest
from django.test import Client

from provisioning.models import Cluster

pytestmark = pytest.mark.django_db

DEEP_LIST = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000


@pytest.mark.parametrize("body", [DEEP_LIST, DEEP_OBJECT, "{", "\xff\xfe", '{"name": NaN'])
def test_an_unparseable_body_is_a_400(
    body: str, demo_cloud: Any, alice: Any, acme: Any, api_for: Any
) -> None:
    client = api_for(alice, acme)
    response = client.generic(
        "POST", "/api/v1/clusters", body.encode("utf-8", "surrogatepass"), "application/json"
    )
    assert response.status_code == 400, response.content[:200]
    assert not Cluster.objects.exists()


def test_a_guest_report_nested_too_deeply_is_a_400() -> None:
    response = Client().post("/api/v1/guest/phone-home", DEEP_LIST, content_type="application/json")
    assert response.status_code == 400
