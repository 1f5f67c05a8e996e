"""API shapes of networks and firewalls."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from networking import rules
from networking.models import Firewall, FirewallRollout, Network


class NetworkInput(serializers.Serializer):
    name = serializers.CharField(max_length=63)
    cidr = serializers.CharField(max_length=18)
    region = serializers.SlugField(required=False, help_text="Defaults to the first region.")


class NetworkOutput(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    region = serializers.CharField(source="region.slug", read_only=True)
    ips_in_use = serializers.IntegerField(read_only=True)

    class Meta:
        model = Network
        fields = [
            "id", "name", "cidr", "gateway", "segment_id", "region", "ips_in_use", "is_default",
            "created_at",
        ]  # fmt: skip


class RulesField(serializers.JSONField):
    """The rule list, normalised; errors keyed by rule index and field."""

    def to_internal_value(self, data: Any) -> list[rules.Rule]:
        try:
            return rules.validate(super().to_internal_value(data))
        except rules.InvalidRules as err:
            raise serializers.ValidationError(err.errors) from err
        except DjangoValidationError as err:
            raise serializers.ValidationError(err.message_dict["rules"]) from err


class FirewallUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=63, required=False)
    rules = RulesField(required=False)


class FirewallInput(FirewallUpdateInput):
    name = serializers.CharField(max_length=63)
    network = serializers.UUIDField()
    rules = RulesField(required=False)


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
