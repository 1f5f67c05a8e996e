"""Network and firewall API: thin views that scope (portal.access), call services, answer."""

from django.db.models import Count, Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from networking import services
from networking.models import Firewall, FirewallRollout, Network
from networking.serializers import (
    FirewallInput,
    FirewallOutput,
    FirewallUpdateInput,
    NetworkInput,
    NetworkOutput,
)
from portal import access
from portal.models import Role


def networks_for(request: Request) -> QuerySet[Network]:
    return (
        access.for_request(Network.objects.live(), request)
        .select_related("region", "organisation")
        .annotate(ips_in_use=Count("allocations"))
    )


def firewalls_for(request: Request) -> QuerySet[Firewall]:
    rollouts = FirewallRollout.objects.select_related("hypervisor", "firewall")
    return (
        access.for_request(Firewall.objects.live(), request)
        .select_related("network", "organisation")
        .prefetch_related(Prefetch("rollouts", queryset=rollouts))
    )


def in_use(error: services.InUse) -> Response:
    return Response(
        {"detail": error.message, "clusters": error.clusters}, status=status.HTTP_409_CONFLICT
    )


class NetworkListView(APIView):
    def get(self, request: Request) -> Response:
        return Response(NetworkOutput(networks_for(request), many=True).data)

    def post(self, request: Request) -> Response:
        organisation = access.acting_organisation(request)
        payload = NetworkInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        network = services.create_network(
            organisation,
            services.region_by_slug(data.get("region")),
            data["name"],
            data["cidr"],
            request=request,
        )
        created = networks_for(request).get(pk=network.pk)
        return Response(NetworkOutput(created).data, status=status.HTTP_201_CREATED)


class NetworkDetailView(APIView):
    def get(self, request: Request, pk: str) -> Response:
        return Response(NetworkOutput(get_object_or_404(networks_for(request), uuid=pk)).data)

    def delete(self, request: Request, pk: str) -> Response:
        network = get_object_or_404(networks_for(request), uuid=pk)
        access.require_role(request.user, network.organisation, Role.MEMBER)
        try:
            services.delete_network(network, request=request)
        except services.InUse as error:
            return in_use(error)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FirewallListView(APIView):
    def get(self, request: Request) -> Response:
        return Response(FirewallOutput(firewalls_for(request), many=True).data)

    def post(self, request: Request) -> Response:
        organisation = access.acting_organisation(request)
        payload = FirewallInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        network = (
            networks_for(request).filter(organisation=organisation, uuid=data["network"]).first()
        )
        if network is None:
            return Response(
                {"network": ["No such network in your organisation."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        firewall = services.create_firewall(
            organisation, network, data["name"], data.get("rules", []), request=request
        )
        created = firewalls_for(request).get(pk=firewall.pk)
        return Response(FirewallOutput(created).data, status=status.HTTP_201_CREATED)


class FirewallDetailView(APIView):
    def get(self, request: Request, pk: str) -> Response:
        return Response(FirewallOutput(get_object_or_404(firewalls_for(request), uuid=pk)).data)

    def patch(self, request: Request, pk: str) -> Response:
        firewall = get_object_or_404(firewalls_for(request), uuid=pk)
        access.require_role(request.user, firewall.organisation, Role.MEMBER)
        payload = FirewallUpdateInput(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        services.update_firewall(
            firewall, request=request, name=data.get("name"), rule_list=data.get("rules")
        )
        return Response(FirewallOutput(get_object_or_404(firewalls_for(request), uuid=pk)).data)

    def delete(self, request: Request, pk: str) -> Response:
        firewall = get_object_or_404(firewalls_for(request), uuid=pk)
        access.require_role(request.user, firewall.organisation, Role.MEMBER)
        try:
            services.delete_firewall(firewall, request=request)
        except services.InUse as error:
            return in_use(error)
        return Response(status=status.HTTP_204_NO_CONTENT)
