"""The domain's errors: each has a stable code and the HTTP status an API answers with.

Services raise these; one DRF exception handler (`portal.api_errors`) turns them into
JSON (`{"code": ..., "<field>": [...]}`), and pages show their messages. `Invalid` is also
a Django `ValidationError`, so forms take it with `add_error` and `message_dict` works,
and `Forbidden` a `PermissionDenied`, so a page answers 403.
"""

import itertools
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
        return {"code": self.code, **nested(self.message_dict)}


def nested(flat: dict[str, list[str]]) -> dict[str, Any]:
    """Paths as DRF shapes nested errors: `{"pools.1.count": [...]}` becomes
    `{"pools": [{}, {"count": [...]}]}`."""
    out: dict[str, Any] = {}
    for path, messages in flat.items():
        node: Any = out
        parts = path.split(".")
        for part, after in itertools.pairwise(parts):
            if isinstance(node, list):
                node.extend({} for _ in range(int(part) + 1 - len(node)))
                node = node[int(part)]
            else:
                node = node.setdefault(part, [] if after.isdigit() else {})
        node[parts[-1]] = messages
    return out


class Forbidden(DomainError, PermissionDenied):
    """The actor's role does not allow this (403, on pages too)."""

    status = 403
    code = "forbidden"


class Conflict(DomainError):
    """The object's state does not allow this now (409): in use, not ready, wrong state."""

    status = 409
    code = "conflict"
