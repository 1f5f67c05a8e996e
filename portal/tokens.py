"""API tokens: issue (raw value returned once), authenticate, revoke. Only digests are stored."""

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import User
from django.db.models import F
from django.utils import timezone

from portal.models import ApiToken, Organisation

TOKEN_PREFIX = "k3sp_"  # noqa: S105  (a public marker, not a secret)
# last_used_at is written at most this often, so a busy client does not write every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue(
    user: User,
    organisation: Organisation,
    name: str,
    lifetime: timedelta | None,
) -> tuple[ApiToken, str]:
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        organisation=organisation,
        name=name,
        prefix=raw[: len(TOKEN_PREFIX) + 6],
        digest=digest(raw),
        expires_at=timezone.now() + lifetime if lifetime else None,
    )
    return token, raw


def authenticate(raw: str) -> ApiToken | None:
    """The active token for a raw value whose owner is still a member, or None."""
    token = (
        ApiToken.objects.select_related("user", "organisation")
        .filter(digest=digest(raw), revoked_at__isnull=True, user__is_active=True)
        # Still a member of the token's organisation: in the same query.
        .filter(organisation__memberships__user=F("user"))
        .first()
    )
    if token is None or not token.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def revoke(token: ApiToken) -> bool:
    """Revoke once; False when it was already revoked."""
    return bool(
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )
