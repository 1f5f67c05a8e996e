"""Channel-layer sends from sync code, on one event loop per process.

`async_to_sync` called from a thread that no `sync_to_async` made (a Celery worker's)
starts an event loop for each call, and channels-redis keeps a connection pool per event
loop: every send would open a Redis connection of its own (channels_redis#125), about
2.5 ms of CPU each. Here the sends to channels-redis share one loop, on a daemon thread,
and so its one pool. Other layers (the in-memory one of tests) keep `async_to_sync`: their
queues belong to the loop of the consumers that wait on them.
"""

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer
from channels_redis.core import RedisChannelLayer

SEND_SECONDS = 10.0  # a send waiting longer than this fails (and on_commit logs it)

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_pid = 0


def _shared_loop() -> asyncio.AbstractEventLoop:
    """This process's send loop, started on first use (and again in a forked child)."""
    global _loop, _pid
    with _lock:
        if _loop is None or _pid != os.getpid():
            _loop, _pid = asyncio.new_event_loop(), os.getpid()
            thread = threading.Thread(
                target=_loop.run_forever, name="channel-layer-sends", daemon=True
            )
            thread.start()
        return _loop


def group_send(layer: BaseChannelLayer, group: str, message: dict[str, Any]) -> None:
    """`layer.group_send(group, message)`, waited for."""
    if not isinstance(layer, RedisChannelLayer):
        async_to_sync(layer.group_send)(group, message)
        return
    sending: Coroutine[Any, Any, None] = layer.group_send(group, message)
    future = asyncio.run_coroutine_threadsafe(sending, _shared_loop())
    try:
        future.result(SEND_SECONDS)
    except TimeoutError:
        future.cancel()  # not left running on the loop, holding a connection
        raise
