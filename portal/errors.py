"""The domain's errors: each has a stable code and the HTTP status an API answers with.

Services raise these; one DRF exception handler (`portal.api_errors`) turns them into
JSON (`{"code": ..., "<field>": [...]}`), and pages show their messages. `Invalid` is also
a Django `ValidationError`, so forms take it with `add_error` and `message_dict` works,
and `Forbidden` a `PermissionDenied`, so a page answers 403.
"""

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError


class DomainError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        Exception.__init__(self, message)  # not ValidationError's: Invalid sets that up
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra  # more members of the JSON answer, e.g. the clusters in the way

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.message, **self.extra}


# Django's stubs type `code` and `message` as optional; here both are always set.
class Invalid(DomainError, ValidationError):  # type: ignore[misc]
    """Bad input (400), naming the field: `Invalid({"name": "why"})` or `Invalid("why")`."""

    def __init__(self, errors: dict[str, str] | str, *, code: str | None = None) -> None:
        fields = errors if isinstance(errors, dict) else {"detail": errors}
        DomainError.__init__(self, " ".join(fields.values()), code=code)
        ValidationError.__init__(self, {name: [why] for name, why in fields.items()})

    def body(self) -> dict[str, Any]:
        return {"code": self.code, **self.message_dict}


class Forbidden(DomainError, PermissionDenied):
    """The actor's role does not allow this (403, on pages too)."""

    status = 403
    code = "forbidden"


class Conflict(DomainError):
    """The object's state does not allow this now (409): in use, not ready, wrong state."""

    status = 409
    code = "conflict"
