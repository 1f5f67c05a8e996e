"""Signatures of webhook bodies, in Stripe's scheme: `t=<unix seconds>,v1=<hex HMAC-SHA256
of "<t>.<raw body>" keyed with the webhook's secret>`. A receiver recomputes it over the
bytes it received and rejects a timestamp more than five minutes from its clock (the
README shows how), so a captured request cannot be replayed later."""

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Portal-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix, not a secret)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
