"""What a guest calls, authenticated by its node token alone: the NoCloud-net seed that
cloud-init fetches (/guest/<node token>/<document>) and the phone-home API."""

from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from provisioning import guest_seed, phone_home
from provisioning.models import Node
from provisioning.serializers import PhoneHomeInput

DOCUMENTS: dict[str, Callable[[Node], str]] = {
    "meta-data": guest_seed.meta_data,
    "user-data": guest_seed.user_data,
    "network-config": guest_seed.network_config,
    "vendor-data": lambda node: "",
}


@require_GET
def seed_document(request: HttpRequest, token: str, document: str) -> HttpResponse:
    render = DOCUMENTS.get(document)
    node = guest_seed.node_for_token(token) if render else None
    if node is None or render is None:
        raise Http404("No such seed.")
    return HttpResponse(render(node), content_type="text/plain; charset=utf-8")


class PhoneHomeThrottle(SimpleRateThrottle):
    """Per node token: a guest reports a handful of times per launch."""

    scope = "phone_home"
    rate = "120/min"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        token = request.data.get("token") if isinstance(request.data, dict) else None
        digest = guest_seed.token_digest(str(token or self.get_ident(request)))
        return f"throttle_phone_home_{digest}"


class PhoneHomeView(APIView):
    """Guests report each step here. A report that must wait answers 409 (`not_ready`),
    one out of order 400 (`illegal_report`), through the API's exception handler."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [PhoneHomeThrottle]

    def post(self, request: Request) -> Response:
        payload = PhoneHomeInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        node = guest_seed.node_for_token(data["token"])
        if node is None:
            raise Http404("Unknown or revoked node token.")
        phone_home.report(node, data["step"], data["state"], data["message"], data["code"])
        return Response({"node": node.name, "step": data["step"], "state": data["state"]})
