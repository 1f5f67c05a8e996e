"""Middleware timing every request into k3s_portal_http_request_seconds, labelled by the
URL pattern it matched (never the path itself: ids would make labels without end)."""

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from observability.instruments import HTTP_SECONDS


class RequestTimer:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        # A router's regex patterns come anchored ("api/v1/clusters$"): the anchors go.
        route = match.route.lstrip("^").rstrip("$") if match is not None else "unmatched"
        HTTP_SECONDS.labels(
            route, request.method or "", f"{response.status_code // 100}xx"
        ).observe(time.perf_counter() - started)
        return response
