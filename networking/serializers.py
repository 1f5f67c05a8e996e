"""API shapes of networks and firewalls: types only, the rules are networking.services'."""

from typing import Any

from django.db.models import Model, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from networking.models import Firewall, FirewallRollout, Network, regions


@extend_schema_field(OpenApiTypes.STR)
class RegionField(serializers.SlugRelatedField):
    """A region by its slug (provisioning's model, reached through `Network.region`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(slug_field="slug", **kwargs)

    def get_queryset(self) -> QuerySet[Model]:
        return regions()


class NetworkInput(serializers.Serializer):
    name = serializers.CharField(max_length=63)
    cidr = serializers.CharField(max_length=18)
    region = RegionField(required=False, help_text="Defaults to the first region.")
    egress = serializers.BooleanField(
        default=False, help_text="Outbound internet through the hosts (NAT); off by default."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("region") is None:
            # Most installations have just one region.
            attrs["region"] = regions().first()
            if attrs["region"] is None:
                raise serializers.ValidationError({"region": ["No region yet."]})
        return attrs


class NetworkUpdateInput(serializers.Serializer):
    egress = serializers.BooleanField(help_text="Outbound internet through the hosts (NAT).")


class NetworkOutput(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    region = serializers.CharField(source="region.slug", read_only=True)
    ips_in_use = serializers.IntegerField(read_only=True)

    class Meta:
        model = Network
        fields = [
            "id", "name", "cidr", "gateway", "segment_id", "region", "ips_in_use", "is_default",
            "egress", "created_at",
        ]  # fmt: skip


class FirewallUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=63, required=False)
    # Checked by the service (networking.rules), whose errors name each rule and field.
    rules = serializers.JSONField(required=False)


class FirewallInput(FirewallUpdateInput):
    name = serializers.CharField(max_length=63)
    network = serializers.UUIDField()


class RolloutOutput(serializers.ModelSerializer):
    hypervisor = serializers.CharField(source="hypervisor.name", read_only=True)
    current = serializers.SerializerMethodField()

    class Meta:
        model = FirewallRollout
        fields = ["hypervisor", "revision", "current", "enforced", "reason", "updated_at"]

    def get_current(self, rollout: FirewallRollout) -> bool:
        return rollout.revision == rollout.firewall.revision


class FirewallOutput(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    network = serializers.UUIDField(source="network.uuid", read_only=True)
    rollout = RolloutOutput(source="rollouts", many=True, read_only=True)

    class Meta:
        model = Firewall
        fields = [
            "id", "name", "network", "rules", "revision", "is_default", "rollout", "created_at",
        ]  # fmt: skip
