"""100 creates at once through HTTP against one organisation's quota and one /24, on
PostgreSQL (SQLite serialises writers, so it cannot show a race): the quota is never
exceeded, no address is given twice, and every refusal is a 400 naming the field.

The portal runs as it does in production: `manage.py serve` with four web processes and
its worker, on this test's database."""

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from networking import services as network_services
from networking.models import Port
from portal import tokens
from portal.models import Quota
from provisioning.models import Cluster, Hypervisor, Node
from tests import portal_process
from tests.networking.conftest import owner

pytestmark = pytest.mark.django_db(transaction=True)

CREATES, AT_ONCE, NODE_QUOTA = 100, 40, 60  # at once: PostgreSQL here takes 100 connections


@pytest.fixture
def portal_url(demo_cloud: Any, tmp_path: Path) -> Iterator[str]:
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent writers (PostgreSQL; CI runs it); SQLite serialises them")
    database = connection.settings_dict
    port = portal_process.free_port()
    env = portal_process.embedded_env(
        tmp_path,
        port,
        DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}",
        CLOUD_GUEST_SIMULATOR="0",  # the launches stop at the guest steps
    )
    portal_process.manage(env, "init_secrets")
    log = tmp_path / "serve.log"
    server = portal_process.start(env, log, "serve", "--port", str(port), "--web-workers", "4")
    try:
        url = f"http://127.0.0.1:{port}"
        portal_process.wait_ready(url, server, log)
        yield url
    finally:
        portal_process.stop(server)


def test_100_concurrent_creates_keep_the_quota_and_the_addresses(
    demo_cloud: Any, alice: Any, acme: Any, portal_url: str
) -> None:
    Quota.objects.filter(organisation=acme).update(
        clusters=1000, nodes=NODE_QUOTA, vcpus=10_000, memory_mib=10**8
    )
    network = network_services.create_network(
        owner(acme), acme, demo_cloud, "shared", "10.30.0.0/24"
    )
    _, token = tokens.issue(alice, acme, "race", None)
    start = threading.Barrier(AT_ONCE)

    def create(index: int) -> tuple[int, Any]:
        body = {
            "name": f"c{index}",
            "region": "demo",
            "network": str(network.uuid),
            "pools": [{"name": "w", "size": "small", "count": 1}],
        }
        request = urllib.request.Request(  # noqa: S310 (the test's own server)
            f"{portal_url}/api/v1/clusters",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        if index < AT_ONCE:
            start.wait(timeout=30)  # the first wave leaves together
        try:
            with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        answers = list(pool.map(create, range(CREATES)))

    statuses = sorted({status for status, _ in answers})
    assert statuses == [202, 400], answers
    accepted = [body for status, body in answers if status == 202]
    refused = [body for status, body in answers if status == 400]
    assert len(accepted) == NODE_QUOTA and len(refused) == CREATES - NODE_QUOTA
    for body in refused:  # the field, and why
        assert body["code"] == "invalid" and set(body) == {"code", "pools"}, body
        assert "Over your organisation's quota: nodes" in body["pools"][0], body
    assert Cluster.objects.count() == Node.objects.count() == NODE_QUOTA
    addresses = list(Port.objects.filter(network=network).values_list("address", flat=True))
    assert len(addresses) == len(set(addresses)) == NODE_QUOTA
    assert all(address.startswith("10.30.0.") for address in addresses)
    held = sum(h.vcpus_allocated for h in Hypervisor.objects.all())
    assert held == NODE_QUOTA  # one small node (1 vCPU) each, claimed once
