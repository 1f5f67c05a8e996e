"""Cluster API: one viewset that scopes (portal.access), parses, calls a service, answers.

Authorisation: `RolePermission` (viewer reads, member changes) and the services, which
check the actor again; errors are domain errors mapped by the one exception handler.
"""

from datetime import timedelta

from django.db.models import Prefetch, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response

from observability.models import Event
from observability.serializers import EventOutput
from portal import access
from portal.errors import Invalid
from portal.permissions import RolePermission
from provisioning import kubeconfigs, services, upgrades
from provisioning.models import Cluster, IssuedCredential, Node, NodePool
from provisioning.serializers import (
    ClusterDetailOutput,
    ClusterInput,
    ClusterOutput,
    ClusterUpdateInput,
    CredentialOutput,
    DeletingOutput,
    KubeconfigInput,
    RetryOutput,
    ScaleInput,
    ScaleOutput,
    UpgradeInput,
)
from provisioning.states import CLUSTER_LIVE

# The columns ClusterDetailOutput reads (a test counts its queries: a missing one is a query
# per row).
CLUSTER_SHOWN = (
    "uuid", "name", "region__slug", "k3s_version__version", "cni", "status", "status_reason",
    "network__uuid", "firewall__uuid", "created_at", "ready_at", "heal_enabled",
    "heal_after_seconds", "heal_max_parallel", "upgrade_to__version", "upgrade_started_at",
    "upgrade_error",
)  # fmt: skip
NODE_SHOWN = (
    "uuid", "cluster", "pool", "name", "is_server", "status", "error_code",
    "error_message", "console_tail", "hypervisor__name", "port__address", "port__mac",
    "health", "replaces__name", "k3s_version__version",
)  # fmt: skip


class EventPagination(CursorPagination):
    ordering = "id"
    page_size = 200
    max_page_size = 1000
    page_size_query_param = "limit"


class ClusterViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    permission_classes = [RolePermission]
    serializer_class = ClusterOutput
    lookup_field = "uuid"
    lookup_url_kwarg = "cluster_id"

    def get_queryset(self) -> QuerySet[Cluster]:
        """The caller's clusters with everything the serializer reads, in constant queries."""
        # Each join costs PostgreSQL planning time on every poll: a node's pool comes from
        # the cluster's prefetched pools (ClusterOutput.get_nodes), not a join.
        nodes = Node.objects.select_related(
            "hypervisor", "port", "health", "replaces", "k3s_version"
        ).order_by("id")
        # The detail's ETA reads the steps, and its nodes' steps come from them.
        nodes = nodes.prefetch_related("steps") if self.action == "retrieve" else nodes.with_step()
        clusters = (
            access.for_request(Cluster.objects.all(), self.request)
            .select_related("region", "k3s_version", "upgrade_to", "network", "firewall")
            .order_by("-created_at", "-id")
        )
        if self.request.method in SAFE_METHODS:
            # What the output shows, no more: every column is compiled, sent and loaded
            # again on each poll (the CA keys and join token are never read here).
            nodes = nodes.only(*NODE_SHOWN)
            clusters = clusters.only(*CLUSTER_SHOWN)
        else:
            clusters = clusters.select_related("organisation")  # its roles decide changes
        clusters = clusters.prefetch_related(
            Prefetch("nodes", queryset=nodes),
            Prefetch("pools", queryset=NodePool.objects.select_related("size")),
        )
        if self.action == "list":
            clusters = clusters.filter(status__in=CLUSTER_LIVE)
        return clusters

    def get_serializer_class(self) -> type[ClusterOutput]:
        return ClusterDetailOutput if self.action == "retrieve" else ClusterOutput

    @extend_schema(request=ClusterInput, responses={202: ClusterOutput})
    def create(self, request: Request) -> Response:
        payload = ClusterInput(data=request.data)
        payload.is_valid(raise_exception=True)
        cluster = services.create_cluster(access.actor(request), payload.to_request())
        created = self.get_queryset().get(pk=cluster.pk)
        return Response(ClusterOutput(created).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ClusterUpdateInput, responses=ClusterOutput)
    def partial_update(self, request: Request, cluster_id: str) -> Response:
        cluster = self.get_object()
        payload = ClusterUpdateInput(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        policy = payload.validated_data.get("health_policy", {})
        services.set_health_policy(access.actor(request), cluster, policy)
        return Response(ClusterOutput(self.get_queryset().get(pk=cluster.pk)).data)

    @extend_schema(responses={202: DeletingOutput})
    def destroy(self, request: Request, cluster_id: str) -> Response:
        cluster = self.get_object()
        services.delete_cluster(access.actor(request), cluster)
        return Response({"id": str(cluster.uuid), "status": "deleting"}, status=202)

    @extend_schema(
        request=ScaleInput,
        responses={202: ScaleOutput},
        parameters=[OpenApiParameter("pool_name", str, OpenApiParameter.PATH)],
    )
    @action(detail=True, methods=["patch"], url_path=r"pools/(?P<pool_name>[^/]+)")
    def pool(self, request: Request, cluster_id: str, pool_name: str) -> Response:
        cluster = self.get_object()
        pool = get_object_or_404(
            NodePool.objects.select_related("size", "cluster"), cluster=cluster, name=pool_name
        )
        payload = ScaleInput(data=request.data)
        payload.is_valid(raise_exception=True)
        count = payload.validated_data["count"]
        services.scale_pool(access.actor(request), pool, count)
        return Response({"id": str(cluster.uuid), "pool": pool.name, "count": count}, status=202)

    @extend_schema(request=UpgradeInput, responses={202: ClusterDetailOutput})
    @action(detail=True, methods=["post"])
    def upgrade(self, request: Request, cluster_id: str) -> Response:
        """Roll the cluster to a newer K3s (the next minor at most): the server in place,
        then each agent replaced; progress in `upgrade` and the events."""
        cluster = self.get_object()
        payload = UpgradeInput(data=request.data)
        payload.is_valid(raise_exception=True)
        upgrades.start(access.actor(request), cluster, payload.validated_data["k3s_version"])
        shown = self.get_queryset().get(pk=cluster.pk)
        return Response(ClusterDetailOutput(shown).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: RetryOutput})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, cluster_id: str) -> Response:
        cluster = self.get_object()
        names = services.retry_failed(access.actor(request), cluster)
        return Response({"id": str(cluster.uuid), "retrying": names}, status=202)

    @extend_schema(
        responses=EventOutput(many=True),
        parameters=[OpenApiParameter("after", int, description="Only events after this id.")],
    )
    @action(detail=True, methods=["get"], pagination_class=EventPagination)
    def events(self, request: Request, cluster_id: str) -> Response:
        cluster = self.get_object()
        try:
            after = int(request.query_params.get("after", 0))
        except ValueError:
            raise Invalid({"after": "Must be an integer event id."}) from None
        page = self.paginate_queryset(Event.objects.filter(cluster=cluster, id__gt=after))
        return self.get_paginated_response(EventOutput(page, many=True).data)

    @extend_schema(
        parameters=[KubeconfigInput],
        responses={(200, "application/yaml"): OpenApiTypes.STR},
        description="A kubeconfig with a client certificate for `role`, valid `ttl` seconds.",
    )
    @action(detail=True, methods=["get"])
    def kubeconfig(self, request: Request, cluster_id: str) -> HttpResponse:
        cluster = self.get_object()
        payload = KubeconfigInput(data=request.query_params)
        payload.is_valid(raise_exception=True)
        role = payload.validated_data["role"]
        ttl = payload.validated_data.get("ttl")
        lifetime = timedelta(seconds=ttl) if ttl else kubeconfigs.DEFAULT_TTL
        body = kubeconfigs.issue(access.actor(request), cluster, role, lifetime)
        response = HttpResponse(body, content_type="application/yaml")
        response["Content-Disposition"] = (
            f'attachment; filename="{cluster.name}-{role}.kubeconfig.yaml"'
        )
        return response

    @extend_schema(responses=CredentialOutput(many=True))
    @action(detail=True, methods=["get"])
    def credentials(self, request: Request, cluster_id: str) -> Response:
        issued = IssuedCredential.objects.filter(cluster=self.get_object())
        page = self.paginate_queryset(issued)
        return self.get_paginated_response(CredentialOutput(page, many=True).data)
