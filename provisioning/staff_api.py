"""The supercluster for staff: hypervisor inventory, cordon and uncordon, orphan domains.

For anyone else the staff API does not exist (404), so its presence is not confirmed.
"""

from dataclasses import asdict
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, generics, permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import access
from portal.actor import Actor
from provisioning import draining, inventory, virtualisation
from provisioning.models import CpuMode, Hypervisor, OrphanDomain, VirtType


class StaffOnly(permissions.BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        if not request.user.is_authenticated:
            return False  # DRF answers 401
        if not request.user.is_staff:
            raise exceptions.NotFound()
        return True


class DrainOutput(serializers.Serializer):
    left = serializers.ListField(child=serializers.CharField(), help_text="nodes still on it")
    moving = serializers.ListField(child=serializers.CharField(), help_text="replacements")
    blocked = serializers.DictField(child=serializers.CharField(), help_text="node: why")


# "" is auto-detection (provisioning.virtualisation).
VIRT_TYPES = ["", *VirtType.values]
CPU_MODES = ["", *CpuMode.values]


class HypervisorSerializer(serializers.ModelSerializer):
    region = serializers.CharField(source="region.slug")
    virt_type = serializers.ChoiceField(choices=VIRT_TYPES, read_only=True)
    cpu_mode = serializers.ChoiceField(choices=CPU_MODES, read_only=True)
    # What its domains get: the stored fields with blanks filled as the sync would.
    virtualisation = serializers.SerializerMethodField()
    agent_silent = serializers.SerializerMethodField()
    drain = serializers.SerializerMethodField()

    class Meta:
        model = Hypervisor
        fields = [
            "uuid",
            "name",
            "region",
            "state",
            "vcpus_total",
            "vcpus_allocated",
            "vcpus_capacity",
            "memory_mib_total",
            "memory_mib_allocated",
            "memory_mib_capacity",
            "cpu_overcommit",
            "memory_overcommit",
            "domain_count",
            "synced_at",
            "sync_failures",
            "last_error",
            "virt_type",
            "cpu_mode",
            "cpu_model",
            "machine_type",
            "virtualisation",
            "agent_seen_at",
            "agent_silent",
            "draining_since",
            "drain",
        ]
        read_only_fields = fields

    def get_virtualisation(self, hypervisor: Hypervisor) -> dict[str, str]:
        virt = hypervisor.virtualisation
        return {
            "virt_type": virt.virt_type,
            "cpu_mode": virt.cpu_mode,
            "cpu_model": virt.cpu_model,
            "machine_type": virt.machine_type,
        }

    @extend_schema_field(DrainOutput(allow_null=True))
    def get_drain(self, hypervisor: Hypervisor) -> dict[str, object] | None:
        """While draining: the nodes still on it, the moves under way, what cannot move."""
        if hypervisor.draining_since is None:
            return None
        return asdict(draining.progress(hypervisor))

    def get_agent_silent(self, hypervisor: Hypervisor) -> bool:
        """No answer to the agent ping for AGENT_SILENT_SECONDS (placement then skips the
        host when host queues are on)."""
        seen = hypervisor.agent_seen_at
        return seen is None or seen < timezone.now() - timedelta(
            seconds=settings.AGENT_SILENT_SECONDS
        )


class HypervisorList(generics.ListAPIView):
    permission_classes = [StaffOnly]
    queryset = Hypervisor.objects.select_related("region")
    serializer_class = HypervisorSerializer


class VirtualisationSerializer(serializers.Serializer):
    """PATCH body: any of the four; "" puts a field back to auto-detection."""

    virt_type = serializers.ChoiceField(choices=VIRT_TYPES, required=False)
    cpu_mode = serializers.ChoiceField(choices=CPU_MODES, required=False)
    cpu_model = serializers.CharField(allow_blank=True, max_length=64, required=False)
    machine_type = serializers.CharField(allow_blank=True, max_length=64, required=False)


class HypervisorDetail(APIView):
    """GET one host; PATCH its virtualisation (400 names the bad field)."""

    permission_classes = [StaffOnly]

    @extend_schema(responses=HypervisorSerializer)
    def get(self, request: Request, name: str) -> Response:
        hypervisor = get_object_or_404(Hypervisor.objects.select_related("region"), name=name)
        return Response(HypervisorSerializer(hypervisor).data)

    @extend_schema(request=VirtualisationSerializer, responses=HypervisorSerializer)
    def patch(self, request: Request, name: str) -> Response:
        hypervisor = get_object_or_404(Hypervisor.objects.select_related("region"), name=name)
        body = VirtualisationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        unknown = sorted(set(request.data) - set(virtualisation.FIELDS))
        if unknown:
            raise exceptions.ValidationError(
                {f: ["Not a field that can be changed."] for f in unknown}
            )
        try:
            virtualisation.change(access.actor(request), hypervisor, body.validated_data)
        except ValidationError as err:
            raise exceptions.ValidationError(err.message_dict) from err
        return Response(HypervisorSerializer(hypervisor).data)


class HypervisorStateChange(APIView):
    """POST: 200 with the host (also when it already was in the target state), 409 with the
    reason when its state does not allow the change."""

    permission_classes = [StaffOnly]

    @staticmethod
    def change(actor: Actor, hypervisor: Hypervisor) -> bool:
        raise NotImplementedError

    @extend_schema(request=None, responses=HypervisorSerializer)
    def post(self, request: Request, name: str) -> Response:
        hypervisor = get_object_or_404(Hypervisor.objects.select_related("region"), name=name)
        self.change(access.actor(request), hypervisor)
        return Response(HypervisorSerializer(hypervisor).data)


class Cordon(HypervisorStateChange):
    change = staticmethod(inventory.cordon)


class Uncordon(HypervisorStateChange):
    change = staticmethod(inventory.uncordon)


class Drain(HypervisorStateChange):
    """Cordon the host and move its nodes to others (progress in `drain`)."""

    change = staticmethod(draining.drain)


class CancelDrain(HypervisorStateChange):
    change = staticmethod(draining.cancel)


class OrphanSerializer(serializers.ModelSerializer):
    hypervisor = serializers.CharField(source="hypervisor.name")
    removal_due_at = serializers.SerializerMethodField()

    class Meta:
        model = OrphanDomain
        fields = ["uuid", "hypervisor", "name", "first_seen_at", "last_seen_at", "removal_due_at"]
        read_only_fields = fields

    def get_removal_due_at(self, orphan: OrphanDomain) -> datetime:
        return orphan.first_seen_at + timedelta(seconds=settings.ORPHAN_GRACE_SECONDS)


class OrphanList(generics.ListAPIView):
    """Domains with the portal's prefix that no node owns, not yet removed by reconciliation."""

    permission_classes = [StaffOnly]
    queryset = OrphanDomain.objects.filter(removed_at__isnull=True).select_related("hypervisor")
    serializer_class = OrphanSerializer
