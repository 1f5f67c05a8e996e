"""Doorbells from sync threads without an event loop (Celery's) reach the consumers over
channels-redis on one connection, not one connection per send."""

import asyncio
import threading
from typing import Any

import pytest
import redis
from channels.layers import get_channel_layer

from observability import layer_sends
from tests import channel_layers


@pytest.fixture
def redis_url(settings: Any) -> str:
    return channel_layers.use_redis(settings)


def connections_made(url: str) -> int:
    stats = redis.Redis.from_url(url).info("stats")
    return int(stats["total_connections_received"])


def in_plain_thread(work: Any) -> None:
    """Run `work` on a thread of its own, as a Celery worker's thread runs a task."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # handed to the test's thread
            failed.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert not failed, failed


def awaited(coroutine: Any) -> Any:
    """The coroutine's result, run on a loop of its own in a plain thread: the test's own
    thread may hold a running loop (an earlier test's, as Playwright's sync API leaves)."""
    result: list[Any] = []
    in_plain_thread(lambda: result.append(asyncio.run(coroutine)))
    return result[0]


def test_sends_from_a_thread_without_a_loop_share_one_connection(redis_url) -> None:
    layer = get_channel_layer()
    channel = awaited(layer.new_channel())
    awaited(layer.group_add("cluster.sends", channel))
    layer_sends.group_send(layer, "cluster.sends", {"type": "event.ready", "event_id": 0})
    before = connections_made(redis_url)

    def ring_twenty() -> None:
        for event_id in range(1, 21):
            layer_sends.group_send(
                layer, "cluster.sends", {"type": "event.ready", "event_id": event_id}
            )

    in_plain_thread(ring_twenty)
    in_plain_thread(ring_twenty)
    # The count's own connection is the one more.
    assert connections_made(redis_url) - before <= 1

    async def receive(count: int) -> list[int]:
        return [(await layer.receive(channel))["event_id"] for _ in range(count)]

    assert awaited(receive(41)) == [0, *range(1, 21), *range(1, 21)]


def test_a_send_that_hangs_fails_and_stops(redis_url, monkeypatch) -> None:
    """Past SEND_SECONDS the caller (an on_commit hook, which logs it) gets a timeout, and
    the send does not go on holding a connection on the shared loop."""
    layer = get_channel_layer()
    stopped = threading.Event()

    async def hang(group: str, message: dict[str, Any]) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            stopped.set()
            raise

    monkeypatch.setattr(layer, "group_send", hang)
    monkeypatch.setattr(layer_sends, "SEND_SECONDS", 0.1)
    with pytest.raises(TimeoutError):
        layer_sends.group_send(layer, "cluster.sends", {"type": "event.ready", "event_id": 1})
    assert stopped.wait(5)
