"""Pools' node labels and taints and the cluster's CNI: checked at create, stored, shown,
and handed to K3s through each node's seed."""

from typing import Any

import pytest
import yaml
from django.contrib.auth.models import User

from portal.models import Organisation
from provisioning import guest_seed
from provisioning.models import Cluster, Node

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]

POOLS = [
    {"name": "control", "size": "small", "count": 1},
    {
        "name": "db",
        "size": "small",
        "count": 1,
        "labels": {"tier": "db", "example.com/disk": "ssd"},
        "taints": ["dedicated=db:NoSchedule"],
    },
]


def seed_of(node: Node) -> tuple[dict[str, str], list[str]]:
    """The agent's settings and the paths of the files a node's user-data writes."""
    document = yaml.safe_load(guest_seed.user_data(node, "token").split("\n", 1)[1])
    files = {f["path"]: f["content"] for f in document["write_files"]}
    env = dict(
        line.split("=", 1) for line in files["/etc/k3s-portal/agent.env"].splitlines() if line
    )
    return env, list(files)


def test_labels_taints_and_cilium_reach_k3s(
    demo_cloud: Any, alice: User, acme: Organisation, api_for: Any
) -> None:
    body = {"name": "shop", "region": "demo", "cni": "cilium", "pools": POOLS}
    created = api_for(alice, acme).post("/api/v1/clusters", body, format="json")
    assert created.status_code == 202, created.json()
    shown = created.json()
    assert shown["cni"] == "cilium"
    assert shown["pools"][1] == POOLS[1]
    assert shown["pools"][0]["labels"] == {} and shown["pools"][0]["taints"] == []

    cluster = Cluster.objects.get(uuid=shown["id"])
    server = cluster.nodes.get(is_server=True)
    db_node = cluster.nodes.get(pool__name="db")
    server_env, server_files = seed_of(server)
    assert server_env["K3S_ARGS"] == "'--flannel-backend=none --disable-network-policy'"
    assert f"{guest_seed.MANIFESTS}/cilium.yaml" in server_files
    db_env, db_files = seed_of(db_node)
    assert db_env["K3S_ARGS"] == (
        "'--node-label=example.com/disk=ssd --node-label=tier=db"
        " --node-taint=dedicated=db:NoSchedule'"
    )
    assert not any(path.startswith(guest_seed.MANIFESTS) for path in db_files)


def test_flannel_is_the_default_and_adds_nothing(
    demo_cloud: Any, alice: User, acme: Organisation, api_for: Any
) -> None:
    body = {"name": "plain", "region": "demo", "pools": POOLS[:1]}
    created = api_for(alice, acme).post("/api/v1/clusters", body, format="json")
    assert created.json()["cni"] == "flannel"
    server = Node.objects.get(is_server=True)
    env, files = seed_of(server)
    assert env["K3S_ARGS"] == "''"
    assert f"{guest_seed.MANIFESTS}/cilium.yaml" not in files


@pytest.mark.parametrize(
    ("pool", "field", "why"),
    [
        ({"labels": {"bad key": "x"}}, "labels", "is not a label key"),
        ({"labels": {"tier": "a b"}}, "labels", "a value has at most 63"),
        ({"labels": {"node-role.kubernetes.io/master": ""}}, "labels", "reserved"),
        ({"labels": {f"k{i}": "v" for i in range(21)}}, "labels", "At most 20"),
        ({"taints": ["dedicated=db:Sometimes"]}, "taints", "Effect one of"),
        ({"taints": ["bad key=x:NoSchedule"]}, "taints", "rules of labels"),
        ({"taints": ["x;rm -rf /:NoSchedule"]}, "taints", "rules of labels"),
    ],
)
def test_a_bad_label_or_taint_is_a_400_on_its_pool(
    demo_cloud: Any,
    alice: User,
    acme: Organisation,
    api_for: Any,
    pool: dict[str, Any],
    field: str,
    why: str,
) -> None:
    body = {"name": "bad", "region": "demo", "pools": [{**POOLS[0], **pool}]}
    answer = api_for(alice, acme).post("/api/v1/clusters", body, format="json")
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"
    assert why in answer.json()["pools"][0][field][0]
    assert not Cluster.objects.exists()


def test_an_unknown_cni_is_a_400(
    demo_cloud: Any, alice: User, acme: Organisation, api_for: Any
) -> None:
    body = {"name": "bad", "region": "demo", "cni": "calico", "pools": POOLS[:1]}
    answer = api_for(alice, acme).post("/api/v1/clusters", body, format="json")
    assert answer.status_code == 400 and "cni" in answer.json()


def test_the_form_takes_labels_taints_and_the_cni(
    demo_cloud: Any, alice: User, browser_for: Any
) -> None:
    form = {
        "name": "paged",
        "region": "demo",
        "cni": "cilium",
        "pool_name": ["control", "db"],
        "pool_size": ["small", "small"],
        "pool_count": ["1", "1"],
        "pool_labels": ["", "tier=db, example.com/disk=ssd"],
        "pool_taints": ["", "dedicated=db:NoSchedule"],
    }
    answer = browser_for(alice).post("/clusters/new/", form)
    assert answer.status_code == 302, answer.content.decode()[:2000]
    cluster = Cluster.objects.get(name="paged")
    assert cluster.cni == "cilium"
    db = cluster.pools.get(name="db")
    assert (db.labels, db.taints) == (POOLS[1]["labels"], POOLS[1]["taints"])

    bad = browser_for(alice).post("/clusters/new/", {**form, "name": "bad", "pool_taints": "x"})
    assert bad.status_code == 400
    assert "taints: &#x27;x&#x27;: key[=value]:Effect" in bad.content.decode()

    page = browser_for(alice).get(f"/clusters/{cluster.uuid}/").content.decode()
    assert "CNI cilium" in page and "<code>dedicated=db:NoSchedule</code>" in page
