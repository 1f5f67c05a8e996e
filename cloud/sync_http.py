"""Django's HTTP handler for ASGI, entered once per request: every view here is sync.

Under ASGI Django builds the middleware chain around an async core, so a chain of sync
middleware gets adapted back and forth, a thread hop per middleware hook in async mode:
about 2 ms of CPU per request, more than a guest report's own work (bench/launch.py).
The portal has no async view, so this handler builds the chain as WSGI does and enters it
from the event loop in one hop (thread-sensitive, as Django runs sync views under ASGI).
Websockets (Channels) do not pass through here.
"""

from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest
from django.http.response import HttpResponseBase


class SyncChainASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        chain: Callable[[HttpRequest], HttpResponseBase] = self._middleware_chain  # type: ignore[has-type]
        self._middleware_chain = sync_to_async(chain, thread_sensitive=True)
