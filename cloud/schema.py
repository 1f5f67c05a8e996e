"""How /api/schema/ describes each operation: its error answers and its authentication.

Every error is JSON with a stable `code` (portal.api_errors); here each operation lists
the statuses it can answer with and, per status, the codes that status carries, so a
client (and Schemathesis in CI) can tell a documented error from a bug.
"""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import permissions

STAFF_PREFIX = "/api/v1/staff/"
ERROR_CODES: dict[str, tuple[str, ...]] = {
    "400": ("invalid", "parse_error", "illegal_report"),
    "401": ("not_authenticated", "authentication_failed"),
    "403": ("forbidden", "permission_denied"),
    "404": ("not_found",),
    "409": ("conflict", "in_use", "not_ready", "state_conflict", "node_not_running"),
    "429": ("throttled",),
}
WHY = {
    "400": "Bad input: each bad field is a member, with its reasons.",
    "401": "No credentials, or an invalid, expired or revoked token.",
    "403": "Your role in the organisation does not allow this.",
    "404": "No such object, or not yours (another organisation's objects do not exist).",
    "409": "The object's state does not allow this now (`detail` says why).",
    "429": "Too many requests: retry after the `Retry-After` header's seconds.",
}


class BearerToken(OpenApiAuthenticationExtension):
    target_class = "portal.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "An API token."}


class PortalSchema(AutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for status in self.error_statuses():
            responses.setdefault(status, error_response(status))
        return responses

    def error_statuses(self) -> list[str]:
        view, method = self.view, self.method
        statuses = []
        # A body, or query parameters of its own (a page past the end is a 404, not a 400).
        if method in ("POST", "PUT", "PATCH") or self.get_override_parameters():
            statuses.append("400")
        if not any(isinstance(p, permissions.AllowAny) for p in view.get_permissions()):
            statuses += ["401", "403"]
        # Path parameters name an object (a guest's token in its body does); a page number
        # or cursor past the end is a 404 too.
        if "{" in self.path or self._is_list_view() or getattr(view, "names_an_object", False):
            statuses.append("404")
        if method not in permissions.SAFE_METHODS:
            statuses.append("409")
        if view.get_throttles():
            statuses.append("429")
        return statuses


def error_response(status: str) -> dict[str, Any]:
    codes = ", ".join(f"`{code}`" for code in ERROR_CODES[status])
    schema = "ValidationError" if status == "400" else "Error"
    return {
        "description": f"{WHY[status]} Codes: {codes}.",
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def staff_paths_for_staff(result: dict[str, Any], request: Any = None, **kwargs: Any) -> Any:
    """Postprocessing hook: the served schema shows the staff API to staff only (to anyone
    else it answers 404, so the schema does not confirm it either). Generated without a
    request (`manage.py spectacular`, docs/openapi.yaml), the schema is whole."""
    user = getattr(request, "user", None)
    if request is not None and not (user is not None and user.is_staff):
        paths = result["paths"].items()
        result["paths"] = {p: ops for p, ops in paths if not p.startswith(STAFF_PREFIX)}
    return result


# The largest value of a database's integer columns: DRF gives model fields these as their
# maximum, which is no rule of the API and differs between SQLite and PostgreSQL.
DATABASE_LIMITS = {2**15 - 1, 2**31 - 1, 2**63 - 1}


def database_ranges_dropped(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: the same document whichever database generated it."""

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "integer" and node.get("maximum") in DATABASE_LIMITS:
                del node["maximum"]
                if node.get("format") == "int64":
                    del node["format"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(result)
    return result


def error_components(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: the two error shapes every operation refers to."""
    every_code = sorted({code for codes in ERROR_CODES.values() for code in codes})
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = {
        "type": "object",
        "required": ["code", "detail"],
        "properties": {
            "code": {"type": "string", "enum": every_code},
            "detail": {"type": "string", "description": "What went wrong, for a person."},
        },
        # Some carry more, e.g. an `in_use` 409 names the clusters in the way.
        "additionalProperties": True,
    }
    schemas["ValidationError"] = {
        "type": "object",
        "required": ["code"],
        "properties": {"code": {"type": "string", "enum": list(ERROR_CODES["400"])}},
        "additionalProperties": {
            "description": "A field's reasons, nested as the input is (a list's items too).",
        },
        "example": {"code": "invalid", "name": ["This field may not be blank."]},
    }
    return result
