"""The portal's HTTP handler under ASGI: the whole middleware chain and the view in one
hop from the event loop (cloud.sync_http), not a hop per middleware hook."""

import asyncio
from typing import Any

import pytest
from asgiref import sync
from asgiref.testing import ApplicationCommunicator
from django.core.handlers.asgi import ASGIHandler

from cloud.asgi import application
from cloud.sync_http import SyncChainASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)


def get(app: Any, path: str) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }

    async def exchange() -> tuple[int, bytes]:
        talk = ApplicationCommunicator(app, scope)
        await talk.send_input({"type": "http.request", "body": b""})
        start = await talk.receive_output(5)
        body = await talk.receive_output(5)
        await talk.wait(5)
        return start["status"], body["body"]

    return asyncio.run(exchange())


def hops(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts of the crossings between the event loop and threads from now on."""
    counted = {"to_thread": 0, "to_loop": 0}
    for name, cls in (("to_thread", sync.SyncToAsync), ("to_loop", sync.AsyncToSync)):
        original = cls.__call__

        def counting(self: Any, *args: Any, _name: str = name, _call: Any = original, **kw: Any):
            counted[_name] += 1
            return _call(self, *args, **kw)

        monkeypatch.setattr(cls, "__call__", counting)
    return counted


def test_a_request_crosses_into_a_thread_once_for_the_chain(monkeypatch) -> None:
    assert isinstance(application.application_mapping["http"], SyncChainASGIHandler)
    counted = hops(monkeypatch)
    status, body = get(application, "/healthz")
    assert status == 200 and b"ok" in body
    # request_started, the chain with its view, request_finished; never back to the loop.
    assert counted == {"to_thread": 3, "to_loop": 0}


def test_django_s_own_handler_hops_per_middleware(monkeypatch) -> None:
    """What the handler saves: Django's adapts the sync-capable middleware around an async
    core, going back to the loop and into a thread again (the figure this guards)."""
    counted = hops(monkeypatch)
    status, _ = get(ASGIHandler(), "/healthz")
    assert status == 200
    assert counted["to_loop"] >= 1 and counted["to_thread"] > 3


def test_errors_still_answer_through_the_chain() -> None:
    status, body = get(application, "/api/v1/no-such-thing")
    assert status == 404 and b'"code"' in body
