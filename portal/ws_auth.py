"""Channels middleware: a bearer token in the handshake authenticates a websocket.

Runs inside AuthMiddlewareStack, so a session user is already in the scope; a valid
`Authorization: Bearer` header replaces it and binds the connection to the token's
organisation. A bad token leaves the user anonymous (the consumer closes with 4401).
"""

from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser

from portal import tokens
from portal.authentication import bearer_value


class BearerTokenAuthMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        headers = dict(scope.get("headers", []))
        raw = bearer_value(headers.get(b"authorization", b"").decode("latin-1"))
        if raw is not None:
            token = await database_sync_to_async(tokens.authenticate)(raw) if raw else None
            scope = {
                **scope,
                "user": token.user if token else AnonymousUser(),
                "auth": token,
            }
        return await self.inner(scope, receive, send)
