"""Network and firewall API: viewsets that scope (portal.access), call services, answer.

Errors are raised, never answered here: `portal.api_errors` maps them (an `InUse` is a
409 naming the clusters).
"""

from django.db.models import Count, Prefetch, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from networking import services
from networking.models import Firewall, FirewallRollout, Network
from networking.serializers import (
    FirewallInput,
    FirewallOutput,
    FirewallUpdateInput,
    NetworkInput,
    NetworkOutput,
    NetworkUpdateInput,
)
from portal import access
from portal.errors import Invalid
from portal.viewsets import ScopedViewSet, acting_in


class NetworkViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, ScopedViewSet
):
    serializer_class = NetworkOutput

    def get_queryset(self) -> QuerySet[Network]:
        return (
            access.for_request(Network.objects.live(), self.request)
            .select_related("region", "organisation")
            .annotate(ips_in_use=Count("ports"))
            .order_by("name", "id")  # a GROUP BY drops Meta.ordering; pages need one
        )

    @extend_schema(request=NetworkInput, responses={201: NetworkOutput})
    def create(self, request: Request) -> Response:
        payload = NetworkInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        network = services.create_network(
            access.actor(request),
            acting_in(request),
            data["region"],
            data["name"],
            data["cidr"],
            egress=data["egress"],
        )
        created = self.get_queryset().get(pk=network.pk)
        return Response(NetworkOutput(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=NetworkUpdateInput, responses=NetworkOutput)
    def partial_update(self, request: Request, pk: str) -> Response:
        network = self.get_object()
        payload = NetworkUpdateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        services.set_egress(access.actor(request), network, payload.validated_data["egress"])
        return Response(NetworkOutput(self.get_object()).data)

    def perform_destroy(self, instance: Network) -> None:
        services.delete_network(access.actor(self.request), instance)


class FirewallViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, ScopedViewSet
):
    serializer_class = FirewallOutput

    def get_queryset(self) -> QuerySet[Firewall]:
        rollouts = FirewallRollout.objects.select_related("hypervisor", "firewall")
        return (
            access.for_request(Firewall.objects.live(), self.request)
            .select_related("network", "organisation")
            .prefetch_related(Prefetch("rollouts", queryset=rollouts))
        )

    @extend_schema(request=FirewallInput, responses={201: FirewallOutput})
    def create(self, request: Request) -> Response:
        organisation = acting_in(request)
        payload = FirewallInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        network = (
            access.for_request(Network.objects.live(), request)
            .filter(organisation=organisation, uuid=data["network"])
            .first()
        )
        if network is None:
            raise Invalid({"network": "No such network in your organisation."})
        firewall = services.create_firewall(
            access.actor(request), organisation, network, data["name"], data.get("rules", [])
        )
        created = self.get_queryset().get(pk=firewall.pk)
        return Response(FirewallOutput(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=FirewallUpdateInput, responses=FirewallOutput)
    def partial_update(self, request: Request, pk: str) -> Response:
        firewall = self.get_object()
        payload = FirewallUpdateInput(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        services.update_firewall(
            access.actor(request), firewall, name=data.get("name"), rule_list=data.get("rules")
        )
        return Response(FirewallOutput(self.get_object()).data)

    def perform_destroy(self, instance: Firewall) -> None:
        services.delete_firewall(access.actor(self.request), instance)
