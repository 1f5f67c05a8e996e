"""API shapes of clusters, pools, nodes, events and credentials."""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from provisioning import addresses, eta, node_health, phone_home, upgrades
from provisioning.cluster_spec import ClusterRequest, PoolRequest
from provisioning.k3s_flags import Cni
from provisioning.models import (
    Cluster,
    HealthState,
    IssuedCredential,
    K3sVersion,
    Node,
    NodePool,
    NodeSize,
    Region,
)
from provisioning.models.clusters import current_step
from provisioning.states import NodeStatus
from provisioning.steps import Step

# Shapes only: the rules on names and counts are the services' (provisioning.cluster_spec).


class PoolInput(serializers.Serializer):
    name = serializers.CharField(allow_blank=True, max_length=200)
    size = serializers.SlugRelatedField(slug_field="slug", queryset=NodeSize.objects.all())
    count = serializers.IntegerField()
    labels = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=63),
        required=False,
        help_text="Kubernetes node labels for the pool's nodes: {key: value}.",
    )
    taints = serializers.ListField(
        child=serializers.CharField(max_length=330),
        required=False,
        help_text='Node taints, "key[=value]:Effect" (NoSchedule, PreferNoSchedule, NoExecute).',
    )


class ClusterInput(serializers.Serializer):
    name = serializers.CharField(allow_blank=True, max_length=200)
    region = serializers.SlugRelatedField(slug_field="slug", queryset=Region.objects.all())
    k3s_version = serializers.SlugRelatedField(
        slug_field="version", queryset=K3sVersion.objects.all(), required=False, allow_null=True
    )
    pools = PoolInput(many=True)
    network = serializers.UUIDField(required=False, allow_null=True)
    firewall = serializers.UUIDField(required=False, allow_null=True)
    cni = serializers.ChoiceField(choices=Cni.choices, default=Cni.FLANNEL)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("k3s_version") is None:
            default = K3sVersion.objects.filter(is_default=True).first()
            if default is None:
                raise serializers.ValidationError({"k3s_version": "No default version; name one."})
            attrs["k3s_version"] = default
        return attrs

    def to_request(self) -> ClusterRequest:
        data = self.validated_data
        return ClusterRequest(
            name=data["name"],
            region=data["region"],
            k3s_version=data["k3s_version"],
            pools=tuple(
                PoolRequest(
                    p["name"],
                    p["size"],
                    p["count"],
                    labels=p.get("labels", {}),
                    taints=tuple(p.get("taints", ())),
                )
                for p in data["pools"]
            ),
            network=str(data["network"]) if data.get("network") else None,
            firewall=str(data["firewall"]) if data.get("firewall") else None,
            cni=data["cni"],
        )


class NodeOutput(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid")
    pool = serializers.CharField(source="pool.name")
    # Read from its step rows (NodeQuerySet.with_step; the detail, current_step).
    step = serializers.ChoiceField(choices=Step.choices, allow_blank=True, read_only=True)
    hypervisor = serializers.CharField(source="hypervisor.name", allow_null=True, default=None)
    ip = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    health = serializers.SerializerMethodField()
    replaces = serializers.CharField(source="replaces.name", allow_null=True, default=None)
    k3s_version = serializers.CharField(source="version.version")

    class Meta:
        model = Node
        fields = [
            "id",
            "name",
            "pool",
            "is_server",
            "status",
            "step",
            "hypervisor",
            "ip",
            "error",
            "health",
            "replaces",
            "k3s_version",
        ]

    def get_ip(self, node: Node) -> str | None:
        return addresses.address_of(node)

    def get_health(self, node: Node) -> dict[str, Any] | None:
        """A running node's verdict (provisioning.node_health); None for the others."""
        if node.status != NodeStatus.RUNNING:
            return None
        health = node_health.health_of(node)
        if health is None:
            return {"state": HealthState.UNKNOWN, "reason": node_health.FIRST_HEARTBEAT}
        return {
            "state": health.state,
            "reason": health.reason,
            "last_heartbeat": health.seen_at,
            "k3s": health.k3s_state,
            "kubernetes": health.kube_status,
        }

    def get_error(self, node: Node) -> dict[str, str] | None:
        if not node.error_code:
            return None
        error = {"code": node.error_code, "message": node.error_message}
        if node.console_tail:  # a silent guest's serial console, its last lines
            error["console_tail"] = node.console_tail
        return error


class HealthPolicy(serializers.Serializer):
    """When a node is replaced automatically (provisioning.healing)."""

    enabled = serializers.BooleanField(source="heal_enabled")
    after_seconds = serializers.IntegerField(
        source="heal_after_seconds",
        min_value=60,
        max_value=86400,
        help_text="How long an agent node stays unhealthy before it is replaced.",
    )
    max_parallel = serializers.IntegerField(
        source="heal_max_parallel", min_value=1, max_value=10, help_text="Replacements at once."
    )


class PoolOutput(serializers.ModelSerializer):
    size = serializers.CharField(source="size.slug")
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True))
    taints = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = NodePool
        fields = ["name", "size", "count", "labels", "taints"]


class ClusterOutput(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid")
    region = serializers.CharField(source="region.slug")
    k3s_version = serializers.CharField(source="k3s_version.version")
    network = serializers.UUIDField(source="network.uuid")
    firewall = serializers.UUIDField(source="firewall.uuid")
    pools = PoolOutput(many=True)
    nodes = serializers.SerializerMethodField()
    health_policy = HealthPolicy(source="*")

    class Meta:
        model = Cluster
        fields = [
            "id",
            "name",
            "region",
            "k3s_version",
            "cni",
            "status",
            "status_reason",
            "network",
            "firewall",
            "created_at",
            "ready_at",
            "health_policy",
            "pools",
            "nodes",
        ]

    def get_nodes(self, cluster: Cluster) -> list[dict[str, Any]]:
        pools = {pool.pk: pool for pool in cluster.pools.all()}  # prefetched: no query
        nodes = [n for n in cluster.nodes.all() if n.status != "deleted"]
        for node in nodes:
            node.pool = pools.get(node.pool_id) or node.pool
        return NodeOutput(nodes, many=True).data  # type: ignore[return-value]


class UpgradeOutput(serializers.Serializer):
    to = serializers.CharField(allow_null=True, help_text="The target of a rollout under way.")
    started_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(help_text="Why the rollout stopped; blank while it goes on.")
    available = serializers.ListField(child=serializers.CharField(), help_text="newest first")


class ClusterDetailOutput(ClusterOutput):
    """One cluster: with the seconds its launch still needs (None when nothing launches).

    Only here, not in the list: the estimate reads the recent step history per cluster."""

    eta_seconds = serializers.SerializerMethodField()
    upgrade = serializers.SerializerMethodField()

    class Meta(ClusterOutput.Meta):
        fields = [*ClusterOutput.Meta.fields, "eta_seconds", "upgrade"]

    @extend_schema_field(UpgradeOutput)
    def get_upgrade(self, cluster: Cluster) -> dict[str, Any]:
        """The rollout under way (`to`, `started_at`, `error`) and the versions offered."""
        return {
            "to": cluster.upgrade_to.version if cluster.upgrade_to else None,
            "started_at": cluster.upgrade_started_at,
            "error": cluster.upgrade_error,
            "available": [v.version for v in upgrades.available(cluster)],
        }

    def get_nodes(self, cluster: Cluster) -> list[dict[str, Any]]:
        for node in cluster.nodes.all():
            node.step = current_step(node.steps.all())  # prefetched for the ETA: no query
        return super().get_nodes(cluster)

    def get_eta_seconds(self, cluster: Cluster) -> float | None:
        remaining = eta.remaining_seconds(cluster)
        return None if remaining is None else round(remaining, 1)


class CredentialOutput(serializers.ModelSerializer):
    user = serializers.CharField(source="username")

    class Meta:
        model = IssuedCredential
        fields = ["user", "role", "serial", "created_at", "expires_at"]


class ClusterUpdateInput(serializers.Serializer):
    health_policy = HealthPolicy(help_text="Any of its members (a PATCH).")


class ScaleInput(serializers.Serializer):
    count = serializers.IntegerField()


# The answers of the cluster actions that queue work (202): what was queued.
class DeletingOutput(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["deleting"])


class ScaleOutput(serializers.Serializer):
    id = serializers.UUIDField()
    pool = serializers.CharField()
    count = serializers.IntegerField()


class RetryOutput(serializers.Serializer):
    id = serializers.UUIDField()
    retrying = serializers.ListField(child=serializers.CharField(), help_text="node names")


class KubeconfigInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=["admin", "viewer"], default="admin")
    ttl = serializers.IntegerField(min_value=1, required=False, help_text="seconds")


class GuestReportInput(serializers.Serializer):
    step = serializers.CharField(max_length=16)
    state = serializers.ChoiceField(choices=phone_home.STATES)
    message = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    # A failure's own code (e.g. k3s_bundle_missing); others become `<step>_failed`. Not
    # `code`: an error answer's own `code` member would hide a 400 on this field.
    error_code = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")


class PhoneHomeInput(GuestReportInput):
    """One report (`step`, `state`, ...), or several in `reports`, applied in order (a
    step's end and the next one's start, say); not both."""

    token = serializers.CharField(max_length=128)
    step = serializers.CharField(max_length=16, required=False)
    state = serializers.ChoiceField(choices=phone_home.STATES, required=False)
    reports = serializers.ListField(
        child=GuestReportInput(), required=False, min_length=1, max_length=10
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if "reports" in data:
            if "step" in data or "state" in data:
                raise serializers.ValidationError(
                    {"reports": "Send one report or a list of them, not both."}
                )
            return data
        required = ("step", "state")
        missing = {name: "This field is required." for name in required if name not in data}
        if missing:
            raise serializers.ValidationError(missing)
        return data


class KubeNodeInput(serializers.Serializer):
    name = serializers.CharField(max_length=63)
    status = serializers.CharField(max_length=40)  # kubectl's STATUS: Ready, NotReady, ...


class HeartbeatInput(serializers.Serializer):
    """What the guest agent's heartbeat posts (provisioning.node_health)."""

    token = serializers.CharField(max_length=128)
    load1 = serializers.FloatField(min_value=0, max_value=100000)
    cpu_percent = serializers.FloatField(min_value=0, max_value=100)
    memory_used_mib = serializers.IntegerField(min_value=0, max_value=2**31 - 1)
    memory_total_mib = serializers.IntegerField(min_value=0, max_value=2**31 - 1)
    disk_used_percent = serializers.FloatField(min_value=0, max_value=100)
    k3s = serializers.CharField(max_length=20, allow_blank=True)
    # The server's `k3s kubectl get nodes`; agents send none.
    nodes = serializers.ListField(child=KubeNodeInput(), required=False, max_length=1000)
    k3s_version = serializers.CharField(
        max_length=40, required=False, allow_blank=True, help_text="`k3s --version`'s"
    )


class PhoneHomeOutput(serializers.Serializer):
    node = serializers.CharField()
    step = serializers.CharField(help_text="the last report's")
    state = serializers.CharField(help_text="the last report's")
    reports = serializers.IntegerField(help_text="how many reports were applied")


class HeartbeatOutput(serializers.Serializer):
    node = serializers.CharField()
    health = serializers.ChoiceField(choices=HealthState.choices)
    upgrade_to = serializers.CharField(
        allow_null=True, help_text="The K3s version to upgrade to in place (a server's)."
    )


class UpgradeInput(serializers.Serializer):
    k3s_version = serializers.SlugRelatedField(
        slug_field="version", queryset=K3sVersion.objects.all()
    )
