"""Cluster API: one viewset that scopes (portal.access), parses, calls a service, answers.

Authorisation: `RolePermission` (viewer reads, member changes) and the services, which
check the actor again; errors are domain errors mapped by the one exception handler.
"""

from datetime import timedelta

from django.db.models import Prefetch, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from observability.models import Event
from observability.serializers import EventOutput
from portal import access
from portal.errors import Invalid
from portal.permissions import RolePermission
from provisioning import kubeconfigs, services
from provisioning.models import Cluster, IssuedCredential, Node, NodePool
from provisioning.serializers import (
    ClusterDetailOutput,
    ClusterInput,
    ClusterOutput,
    CredentialOutput,
    KubeconfigInput,
    ScaleInput,
)
from provisioning.states import CLUSTER_LIVE


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
        nodes = Node.objects.select_related("hypervisor", "port", "pool", "health").order_by("id")
        if self.action == "retrieve":
            nodes = nodes.prefetch_related("steps")  # the ETA reads them
        clusters = (
            access.for_request(Cluster.objects.all(), self.request)
            .select_related("region", "k3s_version", "network", "firewall", "organisation")
            .prefetch_related(Prefetch("nodes", queryset=nodes), "pools__size")
            .order_by("-created_at", "-id")
        )
        if self.action == "list":
            clusters = clusters.filter(status__in=CLUSTER_LIVE)
        return clusters

    def get_serializer_class(self) -> type[ClusterOutput]:
        return ClusterDetailOutput if self.action == "retrieve" else ClusterOutput

    def create(self, request: Request) -> Response:
        payload = ClusterInput(data=request.data)
        payload.is_valid(raise_exception=True)
        cluster = services.create_cluster(access.actor(request), payload.to_request())
        created = self.get_queryset().get(pk=cluster.pk)
        return Response(ClusterOutput(created).data, status=status.HTTP_202_ACCEPTED)

    def destroy(self, request: Request, cluster_id: str) -> Response:
        cluster = self.get_object()
        services.delete_cluster(access.actor(request), cluster)
        return Response({"id": str(cluster.uuid), "status": "deleting"}, status=202)

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

    @action(detail=True, methods=["post"])
    def retry(self, request: Request, cluster_id: str) -> Response:
        cluster = self.get_object()
        names = services.retry_failed(access.actor(request), cluster)
        return Response({"id": str(cluster.uuid), "retrying": names}, status=202)

    @action(detail=True, methods=["get"])
    def events(self, request: Request, cluster_id: str) -> Response:
        cluster = self.get_object()
        try:
            after = int(request.query_params.get("after", 0))
        except ValueError:
            raise Invalid({"after": "Must be an integer event id."}) from None
        paginator = EventPagination()
        page = paginator.paginate_queryset(
            Event.objects.filter(cluster=cluster, id__gt=after), request, view=self
        )
        return paginator.get_paginated_response(EventOutput(page, many=True).data)

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

    @action(detail=True, methods=["get"])
    def credentials(self, request: Request, cluster_id: str) -> Response:
        issued = IssuedCredential.objects.filter(cluster=self.get_object())
        page = self.paginate_queryset(issued)
        return self.get_paginated_response(CredentialOutput(page, many=True).data)
