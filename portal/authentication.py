"""DRF authentication by `Authorization: Bearer <token>`."""

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from portal import tokens


def bearer_value(header: str) -> str | None:
    """The raw token of a `Bearer` header, None when the header is not a bearer header."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


class BearerTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        raw = bearer_value(request.META.get("HTTP_AUTHORIZATION", ""))
        if raw is None:
            return None
        token = tokens.authenticate(raw) if raw else None
        if token is None:
            # One code for every 401, as for a missing token: clients (k3sc) test for it.
            raise exceptions.NotAuthenticated("Invalid, expired or revoked token.")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) to unauthenticated API calls.
        return 'Bearer realm="api"'
