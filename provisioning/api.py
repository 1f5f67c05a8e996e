"""Cluster API: thin views that parse, authorise (portal.access), call a service, answer."""

from datetime import timedelta

from django.db.models import Prefetch, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from observability.models import Event
from portal import access
from portal.models import Role
from provisioning import guest, services
from provisioning.models import Cluster, IssuedCredential, Node, NodePool
from provisioning.serializers import (
    ClusterInput,
    ClusterOutput,
    CredentialOutput,
    EventOutput,
    KubeconfigInput,
    PhoneHomeInput,
    ScaleInput,
)
from provisioning.states import ClusterStatus


def clusters_for(request: Request) -> QuerySet[Cluster]:
    """The caller's clusters with everything the serializer reads, in constant queries."""
    nodes = Node.objects.select_related("hypervisor", "ip_allocation", "pool").order_by("id")
    return (
        access.for_request(Cluster.objects.all(), request)
        .select_related("region", "k3s_version", "network", "firewall", "organisation")
        .prefetch_related(Prefetch("nodes", queryset=nodes), "pools__size")
    )


def cluster_or_404(request: Request, cluster_id: str) -> Cluster:
    return get_object_or_404(clusters_for(request), uuid=cluster_id)


def require_member(request: Request, cluster: Cluster) -> None:
    access.require_role(request.user, cluster.organisation, Role.MEMBER)


class ClusterListView(APIView):
    def get(self, request: Request) -> Response:
        clusters = clusters_for(request).exclude(status=ClusterStatus.DELETED)
        return Response(ClusterOutput(clusters, many=True).data)

    def post(self, request: Request) -> Response:
        organisation = access.acting_organisation(request)
        payload = ClusterInput(data=request.data)
        payload.is_valid(raise_exception=True)
        cluster = services.create_cluster(organisation, payload.to_request(), request)
        return Response(
            ClusterOutput(cluster_or_404(request, str(cluster.uuid))).data,
            status=status.HTTP_202_ACCEPTED,
        )


class ClusterDetailView(APIView):
    def get(self, request: Request, cluster_id: str) -> Response:
        return Response(ClusterOutput(cluster_or_404(request, cluster_id)).data)

    def delete(self, request: Request, cluster_id: str) -> Response:
        cluster = cluster_or_404(request, cluster_id)
        require_member(request, cluster)
        services.delete_cluster(cluster, request)
        return Response({"id": str(cluster.uuid), "status": "deleting"}, status=202)


class PoolView(APIView):
    def patch(self, request: Request, cluster_id: str, pool_name: str) -> Response:
        cluster = cluster_or_404(request, cluster_id)
        require_member(request, cluster)
        pool = get_object_or_404(
            NodePool.objects.select_related("size", "cluster"), cluster=cluster, name=pool_name
        )
        payload = ScaleInput(data=request.data)
        payload.is_valid(raise_exception=True)
        services.scale_pool(pool, payload.validated_data["count"], request)
        return Response(
            {"id": str(cluster.uuid), "pool": pool.name, "count": payload.validated_data["count"]},
            status=202,
        )


class RetryView(APIView):
    def post(self, request: Request, cluster_id: str) -> Response:
        cluster = cluster_or_404(request, cluster_id)
        require_member(request, cluster)
        names = services.retry_failed(cluster, request)
        return Response({"id": str(cluster.uuid), "retrying": names}, status=202)


class EventPagination(CursorPagination):
    ordering = "id"
    page_size = 200
    max_page_size = 1000
    page_size_query_param = "limit"


class EventListView(APIView):
    def get(self, request: Request, cluster_id: str) -> Response:
        cluster = cluster_or_404(request, cluster_id)
        try:
            after = int(request.query_params.get("after", 0))
        except ValueError:
            return Response({"after": ["Must be an integer event id."]}, status=400)
        events = Event.objects.filter(cluster=cluster, id__gt=after)
        paginator = EventPagination()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(EventOutput(page, many=True).data)


class KubeconfigView(APIView):
    def get(self, request: Request, cluster_id: str) -> HttpResponse:
        cluster = cluster_or_404(request, cluster_id)
        payload = KubeconfigInput(data=request.query_params)
        payload.is_valid(raise_exception=True)
        role = payload.validated_data["role"]
        access.require_role(
            request.user, cluster.organisation, Role.MEMBER if role == "admin" else Role.VIEWER
        )
        ttl = payload.validated_data.get("ttl")
        lifetime = timedelta(seconds=ttl) if ttl else services.KUBECONFIG_DEFAULT_TTL
        body = services.issue_kubeconfig(cluster, role, lifetime, request)
        response = HttpResponse(body, content_type="application/yaml")
        response["Content-Disposition"] = (
            f'attachment; filename="{cluster.name}-{role}.kubeconfig.yaml"'
        )
        return response


class CredentialListView(APIView):
    def get(self, request: Request, cluster_id: str) -> Response:
        cluster = cluster_or_404(request, cluster_id)
        issued = IssuedCredential.objects.filter(cluster=cluster)
        return Response(CredentialOutput(issued, many=True).data)


class PhoneHomeThrottle(SimpleRateThrottle):
    """Per node token: a guest reports a handful of times per launch."""

    scope = "phone_home"
    rate = "120/min"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        token = request.data.get("token") if isinstance(request.data, dict) else None
        return f"throttle_phone_home_{guest.token_digest(str(token or self.get_ident(request)))}"


class PhoneHomeView(APIView):
    """Guests report each step here, authenticated by their node token only."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [PhoneHomeThrottle]

    def post(self, request: Request) -> Response:
        payload = PhoneHomeInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        node = guest.node_for_token(data["token"])
        if node is None:
            return Response({"detail": "Unknown or revoked node token."}, status=404)
        try:
            guest.report(node, data["step"], data["state"], data["message"])
        except guest.NotReady as wait:
            return Response({"detail": str(wait)}, status=409)
        except guest.IllegalReport as error:
            return Response({"detail": str(error)}, status=400)
        return Response({"node": node.name, "step": data["step"], "state": data["state"]})
