"""The NoCloud-net seed a guest's cloud-init fetches: /guest/<node token>/<document>."""

from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from provisioning import guest
from provisioning.models import Node

DOCUMENTS: dict[str, Callable[[Node], str]] = {
    "meta-data": guest.meta_data,
    "user-data": guest.user_data,
    "network-config": guest.network_config,
    "vendor-data": lambda node: "",
}


@require_GET
def seed_document(request: HttpRequest, token: str, document: str) -> HttpResponse:
    render = DOCUMENTS.get(document)
    node = guest.node_for_token(token) if render else None
    if node is None or render is None:
        raise Http404("No such seed.")
    return HttpResponse(render(node), content_type="text/plain; charset=utf-8")
