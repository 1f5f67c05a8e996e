"""What a guest calls, authenticated by its node token: the NoCloud-net seed that
cloud-init fetches (/guest/<node token>/<document>) and the phone-home API.

On a real host guests come through their network's metadata proxy, which signs which
network and address asked: then the token must be that address's node's, so one node can
never read another's seed (its join token and CA keys), even holding its token.
"""

import hmac
import uuid
from collections.abc import Callable
from typing import Any

from django.core.cache import caches
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from provisioning import addresses, guest_seed, node_health, phone_home, upgrades
from provisioning.drivers import metadata_keys
from provisioning.drivers.hostnet.metadata_proxy import (
    ADDRESS_HEADER,
    NETWORK_HEADER,
    SIGNATURE_HEADER,
    signature,
)
from provisioning.models import Node
from provisioning.serializers import (
    HeartbeatInput,
    HeartbeatOutput,
    PhoneHomeInput,
    PhoneHomeOutput,
)
from provisioning.states import NODE_LAUNCHING

DOCUMENTS: dict[str, Callable[[Node, str], str]] = {
    "meta-data": lambda node, token: guest_seed.meta_data(node),
    "user-data": guest_seed.user_data,
    "network-config": lambda node, token: guest_seed.network_config(node),
    "vendor-data": lambda node, token: "",
}
NOT_A_NODE = "Unknown or revoked node token."
# What holds the cluster's secrets: served while the node is provisioned, then gone.
SECRET_DOCUMENTS = {"user-data"}


def asking_node(request: HttpRequest | Request, token: str, secrets: bool = False) -> Node | None:
    """The token's node, when whoever asks may act as it (may_act_as); `secrets` as
    guest_seed.node_for_token."""
    node = guest_seed.node_for_token(token, secrets)
    return node if node is not None and may_act_as(request, node) else None


def may_act_as(request: HttpRequest | Request, node: Node) -> bool:
    """Anyone holding a node's token may act as it, except through a metadata proxy, where
    only the node at the signed address may."""
    network = request.headers.get(NETWORK_HEADER)
    if network is None:
        return True
    address = request.headers.get(ADDRESS_HEADER, "")
    signed = request.headers.get(SIGNATURE_HEADER, "")
    path = request.get_full_path()
    # A proxy started before a SECRET_KEY rotation signs with the old key.
    if not any(
        hmac.compare_digest(signature(key, network, address, path), signed)
        for key in metadata_keys()
    ):
        return False
    try:
        same_network = uuid.UUID(network) == node.cluster.network.uuid
    except ValueError:
        return False
    return same_network and addresses.address_of(node) == address


@require_GET
def seed_document(request: HttpRequest, token: str, document: str) -> HttpResponse:
    render = DOCUMENTS.get(document)
    node = asking_node(request, token, secrets=document in SECRET_DOCUMENTS) if render else None
    if node is None or render is None:
        raise Http404("No such seed.")
    if document in SECRET_DOCUMENTS and node.status not in NODE_LAUNCHING:
        return HttpResponse(
            "Gone: the seed's secrets are served only while the node is provisioned.\n",
            status=410,
            content_type="text/plain; charset=utf-8",
        )
    return HttpResponse(render(node, token), content_type="text/plain; charset=utf-8")


class PhoneHomeThrottle(SimpleRateThrottle):
    """Per node token: a guest reports a handful of times per launch."""

    scope = "phone_home"
    rate = "120/min"
    cache = caches["throttle"]

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        token = request.data.get("token") if isinstance(request.data, dict) else None
        digest = guest_seed.token_digest(str(token or self.get_ident(request)))
        return f"throttle_phone_home_{digest}"


class GuestView(APIView):
    """What a guest posts, with its node token in the body: no session, no API token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [PhoneHomeThrottle]
    names_an_object = True  # the node token: unknown is a 404 (cloud.schema)

    def guest(self, request: Request, shape: type[Serializer]) -> tuple[Node, dict[str, Any]]:
        """The body, checked against `shape` (400 naming the field), and the asking node."""
        payload = shape(data=request.data)
        payload.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(payload.validated_data)
        node = asking_node(request, data["token"])
        if node is None:
            raise Http404(NOT_A_NODE)
        return node, data


class PhoneHomeView(GuestView):
    """Guests report each step here, one report or several at once. A report that must
    wait answers 409 (`not_ready`), one out of order 400 (`illegal_report`), through the
    API's exception handler; the reports of a batch before it stay applied."""

    @extend_schema(request=PhoneHomeInput, responses=PhoneHomeOutput)
    def post(self, request: Request) -> Response:
        payload = PhoneHomeInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        reports = [
            phone_home.Report(r["step"], r["state"], r["message"], r["error_code"])
            for r in data.get("reports") or [data]
        ]
        try:
            node = phone_home.report(data["token"], reports, lambda n: may_act_as(request, n))
        except phone_home.UnknownNode:
            raise Http404(NOT_A_NODE) from None
        last = reports[-1]
        shown = {"node": node.name, "step": last.step, "state": last.state}
        return Response({**shown, "reports": len(reports)})


class HeartbeatView(GuestView):
    """A running node's heartbeat (provisioning.node_health); one that is no longer running
    answers 409 (`node_not_running`), and its agent stops sending them."""

    @extend_schema(request=HeartbeatInput, responses=HeartbeatOutput)
    def post(self, request: Request) -> Response:
        node, data = self.guest(request, HeartbeatInput)
        figures = {name: data[name] for name in node_health.FIGURES}
        sample = node_health.Sample(**figures, k3s_state=data["k3s"])
        listed = data.get("nodes")
        kube_nodes = None if listed is None else {n["name"]: n["status"] for n in listed}
        state = node_health.record(node, sample, kube_nodes, timezone.now())
        upgrades.reported(node, data.get("k3s_version", ""))
        wanted = upgrades.wanted_by(node)
        return Response(
            {"node": node.name, "health": state, "upgrade_to": wanted.version if wanted else None}
        )
