"""Every API operation fuzzed with Hypothesis (hand-written strategies until the OpenAPI
schema exists): bodies of any JSON shape, with the fields the API knows holding values of
any type, path parameters that name real objects or nothing, odd query strings. No answer
may be a server error. The caller is an organisation owner who is also staff, so the
staff endpoints are reached too."""

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from networking.models import Firewall, Network
from portal import tokens
from provisioning.models import Cluster, Hypervisor

pytestmark = pytest.mark.django_db(transaction=True)

FIELDS = (
    "name", "region", "pools", "size", "count", "network", "firewall", "cidr", "rules",
    "direction", "protocol", "ports", "egress", "token", "step", "state", "message", "code",
    "role", "ttl", "k3s_version", "state", "virt_type", "cpu_mode", "memory_overcommit",
)  # fmt: skip
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
known_shape = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6)
ONE_NODE = {"name": "fuzz", "region": "demo", "pools": [{"name": "w", "size": "small", "count": 1}]}
bodies = known_shape | json_values | st.just(ONE_NODE)
queries = st.dictionaries(
    st.sampled_from(["limit", "offset", "page", "role", "ttl", "after", "status"]),
    st.text(max_size=12) | st.integers().map(str),
    max_size=3,
)


def operations() -> list[tuple[str, str]]:
    """(route pattern, method) of every API view, read off the URL configuration."""

    def walk(patterns: list[Any], prefix: str = "") -> list[tuple[str, Any]]:
        found = []
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                found += walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                found.append((prefix + str(pattern.pattern), pattern.callback))
        return found

    result = []
    for route, view in walk(get_resolver().url_patterns):
        if not route.startswith("api/v1/"):
            continue
        actions = getattr(view, "actions", None)
        view_class = getattr(view, "cls", None) or getattr(view, "view_class", None)
        methods = actions or [
            m for m in ("get", "post", "patch", "delete") if hasattr(view_class, m)
        ]
        result += [(route, method) for method in sorted(methods)]
    return result


def fill(route: str, real: dict[str, str], data: st.DataObject) -> str:
    """The route with each parameter an existing object's id or anything at all."""
    path = route.replace("^", "").replace("$", "")
    for name, pattern in (
        ("(?P<cluster_id>[^/.]+)", "cluster"),
        ("(?P<pool_name>[^/]+)", "pool"),
        ("<uuid:pk>", "object"),
        ("<slug:name>", "host"),
    ):
        if name in path:
            choice = data.draw(
                st.sampled_from([real[pattern], "nope", "0" * 36])
                | st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
            )
            path = path.replace(name, choice)
    return "/" + path


def owner_and_staff(user: Any, organisation: Any) -> Client:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    _, token = tokens.issue(user, organisation, "fuzz", None)
    return Client(headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize(("route", "method"), operations())
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_operation_answers_with_a_server_error(
    route: str,
    method: str,
    data: st.DataObject,
    demo_cloud: Any,
    alice: Any,
    acme: Any,
    settings: Any,
) -> None:
    settings.GUEST_SIMULATOR = False
    client = owner_and_staff(alice, acme)
    cluster = Cluster.objects.filter(organisation=acme).first()
    if cluster is None:
        client.post("/api/v1/clusters", json.dumps(ONE_NODE), content_type="application/json")
        cluster = Cluster.objects.get(organisation=acme)
    objects = [
        *Network.objects.values_list("uuid", flat=True),
        *Firewall.objects.values_list("uuid", flat=True),
    ]
    real = {
        "cluster": str(cluster.uuid),
        "pool": "w",
        "object": str(data.draw(st.sampled_from(objects or [cluster.uuid]))),
        "host": Hypervisor.objects.values_list("name", flat=True).first() or "hv-1",
    }
    path = fill(route, real, data)
    if method in ("get", "delete"):
        response = getattr(client, method)(path, data.draw(queries))
    else:
        body: Any = data.draw(bodies)
        response = getattr(client, method)(path, json.dumps(body), content_type="application/json")
    assert response.status_code < 500, (method, path, response.content[:300])
    # The token is good: what answered was the operation, not the authentication layer.
    assert response.status_code != 401, (method, path)
