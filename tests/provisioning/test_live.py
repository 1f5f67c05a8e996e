"""The live event websocket: history then live, resume, no duplicates, auth, origin."""

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from cloud.asgi import application
from observability import events
from portal import tokens
from portal.models import Organisation
from provisioning.models import Cluster, Region
from tests import channel_layers
from tests.provisioning.factories import make_cluster

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost")
IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture(params=["polling", "in-memory", "redis"])
def layer(request: pytest.FixtureRequest, settings: Any) -> str:
    if request.param == "in-memory":
        settings.CHANNEL_LAYERS = IN_MEMORY
    elif request.param == "redis":
        channel_layers.use_redis(settings)
    else:
        settings.CHANNEL_LAYERS = {}
    return str(request.param)


@pytest.fixture
def cluster(acme: Organisation) -> Cluster:
    region = Region.objects.create(slug="r1", name="r1")
    return make_cluster(acme, region, name="web")


def _session_cookie(user: User) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


def _connect(
    cluster: Cluster, *headers: tuple[bytes, bytes], after: int = 0
) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application,
        f"/ws/clusters/{cluster.uuid}/events/?after={after}",
        headers=[ORIGIN, *headers],
    )


record = database_sync_to_async(events.record)


async def _receive_events(comm: WebsocketCommunicator, count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while len(got) < count:
        message = await comm.receive_json_from(timeout=3)
        if "id" in message:
            got.append(message)
    return got


async def test_history_then_live_without_gaps_or_duplicates(alice, cluster, layer) -> None:
    cookie = await database_sync_to_async(_session_cookie)(alice)
    first = await record(cluster, "one", progress=10)
    second = await record(cluster, "two", progress=20)
    comm = _connect(cluster, cookie)
    connected, _ = await comm.connect()
    assert connected
    status = await comm.receive_json_from(timeout=3)
    assert status == {
        "type": "status",
        "cluster": str(cluster.uuid),
        "status": "pending",
        "progress": 20,
    }
    history = await _receive_events(comm, 2)
    assert [e["id"] for e in history] == [first.id, second.id]
    assert set(history[0]) == {"id", "created_at", "node", "step", "state", "message", "progress"}
    live = [await record(cluster, f"live {i}") for i in range(3)]
    received = await _receive_events(comm, 3)
    assert [e["id"] for e in received] == [e.id for e in live]
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


async def test_resume_after(alice, cluster, layer) -> None:
    cookie = await database_sync_to_async(_session_cookie)(alice)
    seen = [await record(cluster, f"e{i}") for i in range(4)]
    comm = _connect(cluster, cookie, after=seen[1].id)
    await comm.connect()
    await comm.receive_json_from(timeout=3)
    assert [e["id"] for e in await _receive_events(comm, 2)] == [seen[2].id, seen[3].id]
    await comm.disconnect()


async def test_anonymous_is_closed_with_4401(cluster) -> None:
    comm = _connect(cluster)
    connected, _ = await comm.connect()
    assert connected
    assert await comm.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}


async def test_other_tenant_is_closed_with_4404_before_any_data(bob, cluster) -> None:
    await record(cluster, "secret")
    cookie = await database_sync_to_async(_session_cookie)(bob)
    comm = _connect(cluster, cookie)
    await comm.connect()
    assert await comm.receive_output(timeout=3) == {"type": "websocket.close", "code": 4404}


async def test_viewer_may_watch(charlie, cluster) -> None:
    cookie = await database_sync_to_async(_session_cookie)(charlie)
    event = await record(cluster, "visible")
    comm = _connect(cluster, cookie)
    await comm.connect()
    await comm.receive_json_from(timeout=3)
    assert (await _receive_events(comm, 1))[0]["id"] == event.id
    await comm.disconnect()


async def test_bearer_token_authenticates(alice, acme, cluster) -> None:
    _, raw = await database_sync_to_async(tokens.issue)(alice, acme, "ws", None)
    event = await record(cluster, "by token")
    comm = _connect(cluster, (b"authorization", f"Bearer {raw}".encode()))
    await comm.connect()
    await comm.receive_json_from(timeout=3)
    assert (await _receive_events(comm, 1))[0]["id"] == event.id
    await comm.disconnect()


async def test_bad_token_is_4401(cluster) -> None:
    comm = _connect(cluster, (b"authorization", b"Bearer wrong"))
    await comm.connect()
    assert await comm.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}


async def test_foreign_origin_is_refused(alice, cluster) -> None:
    cookie = await database_sync_to_async(_session_cookie)(alice)
    comm = WebsocketCommunicator(
        application,
        f"/ws/clusters/{cluster.uuid}/events/",
        headers=[(b"origin", b"http://evil.example"), cookie],
    )
    connected, _ = await comm.connect()
    assert not connected


async def test_concurrent_doorbells_send_each_event_once(alice, cluster, settings) -> None:
    settings.CHANNEL_LAYERS = IN_MEMORY
    cookie = await database_sync_to_async(_session_cookie)(alice)
    comm = _connect(cluster, cookie)
    await comm.connect()
    await comm.receive_json_from(timeout=3)
    made = await asyncio.gather(*(record(cluster, f"burst {i}") for i in range(20)))
    received = await _receive_events(comm, 20)
    assert sorted(e["id"] for e in received) == sorted(e.id for e in made)
    assert [e["id"] for e in received] == sorted(e["id"] for e in received)
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()
