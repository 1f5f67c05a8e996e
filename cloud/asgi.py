"""ASGI entry point: HTTP through Django (one thread hop a request), websockets through
Channels."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")
django.setup(set_prefix=False)

from channels.routing import ProtocolTypeRouter  # noqa: E402  (needs Django set up first)

from cloud.routing import websocket_application  # noqa: E402
from cloud.sync_http import SyncChainASGIHandler  # noqa: E402

application = ProtocolTypeRouter(
    {"http": SyncChainASGIHandler(), "websocket": websocket_application}
)
