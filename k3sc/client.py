"""The portal's REST API over httpx: bearer auth, paginated lists, errors with their code."""

import re
from collections.abc import Iterator
from typing import Any

import httpx

from k3sc import __version__

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class ApiError(Exception):
    """The portal refused: its stable `code`, a message, and the fields it names (400s)."""

    def __init__(self, status: int, code: str, message: str, fields: dict[str, str]) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def lines(self) -> list[str]:
        if not self.fields:
            return [f"error: {self.code}: {self.message}"]
        return [f"error: {self.code}: {field}: {why}" for field, why in self.fields.items()]


class NetworkError(Exception):
    """The portal could not be reached (or answered something that is not the API)."""


def flatten(value: Any, path: str = "") -> dict[str, str]:
    """DRF's nested field errors as dotted paths: {"pools": [{}, {"count": ["x"]}]} ->
    {"pools.1.count": "x"}."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return {path: " ".join(value)}
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return {path: str(value)}
    out: dict[str, str] = {}
    for key, inner in items:
        out.update(flatten(inner, f"{path}.{key}" if path else str(key)))
    return out


def error_of(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        reason = response.reason_phrase or "unexpected answer"
        return ApiError(response.status_code, f"http_{response.status_code}", reason, {})
    code = str(body.pop("code", f"http_{response.status_code}"))
    detail = body.pop("detail", None)
    fields = flatten(body)
    message = str(detail) if detail is not None else "; ".join(fields.values()) or code
    return ApiError(response.status_code, code, message, fields)


class Client:
    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.http = httpx.Client(
            base_url=f"{self.url}/api/v1/",
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"k3sc/{__version__}"},
            timeout=timeout,
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise NetworkError(f"cannot reach the portal at {self.url}: {error}") from error
        if response.is_error:
            raise error_of(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as error:
            raise NetworkError(f"{self.url} did not answer JSON for {path}") from error

    def get(self, path: str, **params: Any) -> Any:
        return self.json("GET", path, params=params or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.json("POST", path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.json("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        response = self.request("DELETE", path)
        return response.json() if response.content else None

    def text(self, path: str, **params: Any) -> str:
        return self.request("GET", path, params=params or None).text

    def pages(self, path: str, **params: Any) -> Iterator[Any]:
        """Every item of a paginated list, following `next` to the end."""
        page = self.get(path, **params)
        while True:
            yield from page["results"]
            if not page.get("next"):
                return
            page = self.json("GET", page["next"])

    def all(self, path: str, **params: Any) -> list[Any]:
        return list(self.pages(path, **params))

    def find(self, collection: str, name_or_id: str, key: str = "name") -> dict[str, Any]:
        """One object of `collection` by its uuid or, through the list, its `key`."""
        if UUID.match(name_or_id):
            found: dict[str, Any] = self.get(f"{collection}/{name_or_id}")
            return found
        matches = [item for item in self.pages(collection) if item.get(key) == name_or_id]
        if not matches:
            raise ApiError(404, "not_found", f"No {collection[:-1]} with {key} {name_or_id!r}.", {})
        if len(matches) > 1:
            raise ApiError(
                400, "ambiguous", f"{len(matches)} {collection} are named {name_or_id!r}.", {}
            )
        return matches[0]

    def find_id(self, collection: str, name_or_id: str) -> str:
        """The uuid of `name_or_id` (no lookup when it already is one)."""
        if UUID.match(name_or_id):
            return name_or_id
        return str(self.find(collection, name_or_id)["id"])
