"""Tenant clusters: their pools, nodes, the nodes' launch steps, and issued kubeconfigs."""

import uuid
from collections.abc import Iterable

from django.db import models
from django.db.models import OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Greatest

from portal.fields import EncryptedTextField
from provisioning.failures import NodeError
from provisioning.k3s_flags import Cni
from provisioning.models.supercluster import Hypervisor, K3sVersion, NodeSize, Region
from provisioning.states import (
    CLUSTER_LIVE,
    CLUSTER_TRANSITIONS,
    NODE_TRANSITIONS,
    ClusterStatus,
    NodeStatus,
)
from provisioning.steps import Step

DOMAIN_PREFIX = "k3s-"


def volume_for(domain_name: str) -> str:
    """A node's disk is named after its domain, so a leaked domain's disk can be found."""
    return f"{domain_name}.qcow2"


class Cluster(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organisation = models.ForeignKey(
        "portal.Organisation", on_delete=models.PROTECT, related_name="clusters"
    )
    name = models.CharField(max_length=40)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="clusters")
    k3s_version = models.ForeignKey(K3sVersion, on_delete=models.PROTECT)
    cni = models.CharField(max_length=10, choices=Cni.choices, default=Cni.FLANNEL)
    # The health policy (provisioning.healing): an agent node unhealthy this long is
    # replaced, at most this many at once (Cluster API's MachineHealthCheck, in small).
    heal_enabled = models.BooleanField(default=True)
    heal_after_seconds = models.PositiveIntegerField(default=300)
    heal_max_parallel = models.PositiveSmallIntegerField(default=1)
    # A rolling upgrade under way (provisioning.upgrades): its target, when it started, and
    # why it stopped (blank while it goes on; asking again with the target resumes it).
    upgrade_to = models.ForeignKey(
        K3sVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    upgrade_started_at = models.DateTimeField(null=True, blank=True)
    upgrade_error = models.CharField(max_length=300, blank=True)
    network = models.ForeignKey(
        "networking.Network", on_delete=models.PROTECT, related_name="clusters"
    )
    firewall = models.ForeignKey(
        "networking.Firewall", on_delete=models.PROTECT, related_name="clusters"
    )
    status = models.CharField(
        max_length=12, choices=ClusterStatus.choices, default=ClusterStatus.PENDING
    )
    status_reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # PKI and join token (provisioning.pki); private parts Fernet-encrypted.
    server_ca_cert = models.TextField(blank=True)
    server_ca_key = EncryptedTextField(db_column="server_ca_key_encrypted", blank=True)
    client_ca_cert = models.TextField(blank=True)
    client_ca_key = EncryptedTextField(db_column="client_ca_key_encrypted", blank=True)
    join_token = EncryptedTextField(db_column="join_token_encrypted", blank=True)
    # The create request's W3C traceparent: guests' reports continue the launch's trace.
    trace_parent = models.CharField(max_length=64, blank=True)

    TRANSITIONS = CLUSTER_TRANSITIONS
    # The CA material and join token: only the seed and kubeconfigs read them, and loading
    # a row decrypts the keys, so the hot paths defer these.
    PKI_FIELDS = (
        "server_ca_cert",
        "server_ca_key",
        "client_ca_cert",
        "client_ca_key",
        "join_token",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "name"],
                condition=Q(status__in=CLUSTER_LIVE),
                name="cluster_name_unique_while_live",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def pki_fields_from(cls, path: str) -> tuple[str, ...]:
        """PKI_FIELDS as lookups from a model that reaches the cluster by `path`
        ("cluster", "node__cluster"), for defer()."""
        return tuple(f"{path}__{name}" for name in cls.PKI_FIELDS)


class NodePool(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="pools")
    name = models.CharField(max_length=20)
    size = models.ForeignKey(NodeSize, on_delete=models.PROTECT)
    count = models.PositiveSmallIntegerField()
    # Passed to K3s on each of the pool's nodes (provisioning.k3s_flags): {key: value}, and
    # ["key=value:Effect", ...].
    labels = models.JSONField(default=dict, blank=True)
    taints = models.JSONField(default=list, blank=True)
    # Names are never reused, so a node being deleted never clashes with a new one.
    next_index = models.PositiveIntegerField(default=0)

    organisation_path = "cluster__organisation"

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="pool_name_per_cluster")
        ]

    def __str__(self) -> str:
        return f"{self.cluster}/{self.name}"


def current_step(rows: Iterable["NodeStep"]) -> str:
    """NodeQuerySet.with_step's rule over a node's step rows already read."""
    read = list(rows)
    chosen = [r for r in read if r.failed] or [r for r in read if r.started_at is not None]
    return max(chosen, key=lambda row: row.pk).step if chosen else ""


class NodeQuerySet(models.QuerySet["Node"]):
    """A node's step and last move are read from its step rows, so moving a step writes
    those rows alone (provisioning.step_ledger)."""

    def with_step(self) -> "NodeQuerySet":
        """Annotate `step`: the step it failed at, else the last one it started ("" before
        its first). A step starts only once the one before it is done, and a node's step
        rows are made in the steps' order, so the last started has the highest id."""
        current = (
            NodeStep.objects.filter(
                Q(started_at__isnull=False) | Q(failed=True), node=OuterRef("pk")
            )
            .order_by("-failed", "-id")
            .values("step")[:1]
        )
        return self.annotate(step=Coalesce(Subquery(current), Value("")))

    def with_last_move(self) -> "NodeQuerySet":
        """Annotate `moved_at`: the latest of its status change and its steps' times."""
        stamp = Coalesce("finished_at", "started_at")
        latest = (
            NodeStep.objects.filter(node=OuterRef("pk"), started_at__isnull=False)
            .order_by(stamp.desc())
            .values(at=stamp)[:1]
        )
        return self.annotate(
            moved_at=Greatest("progressed_at", Coalesce(Subquery(latest), "progressed_at"))
        )


class Node(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="nodes")
    pool = models.ForeignKey(NodePool, on_delete=models.CASCADE, related_name="nodes")
    name = models.CharField(max_length=63)
    is_server = models.BooleanField(default=False)
    hypervisor = models.ForeignKey(
        Hypervisor, null=True, on_delete=models.PROTECT, related_name="nodes"
    )
    # The node's address and MAC; networking holds ports for opaque owners (the node's
    # uuid), so the link lives on this side. Set by provisioning.addresses.
    port = models.OneToOneField(
        "networking.Port", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The capacity this node holds on its hypervisor; zeroed exactly once on release.
    claimed_vcpus = models.PositiveSmallIntegerField(default=0)
    claimed_memory_mib = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=12, choices=NodeStatus.choices, default=NodeStatus.PENDING)
    error_code = models.CharField(max_length=40, choices=NodeError.choices, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    # The last lines of the guest's serial console, kept when a guest never phoned home.
    console_tail = models.TextField(blank=True)
    # Digest of the guest's token (cloud-init seed URL and phone-home); blank = revoked.
    token_digest = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When its status last changed (created, failed, deleting); its steps' times say the
    # rest (NodeQuerySet.with_last_move).
    progressed_at = models.DateTimeField(auto_now_add=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    # The port of its host's public address forwarded to this server node's 6443
    # (provisioning.api_forwards).
    api_port = models.PositiveIntegerField(null=True, blank=True)
    # The K3s it runs (null: the cluster's): a rolling upgrade moves nodes one by one.
    k3s_version = models.ForeignKey(
        K3sVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The node this one was launched to replace; that one is deleted once this is running.
    replaces = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaced_by"
    )

    objects = NodeQuerySet.as_manager()
    # Only on nodes read through NodeQuerySet.with_step().
    step: str

    organisation_path = "cluster__organisation"
    TRANSITIONS = NODE_TRANSITIONS

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="node_name_per_cluster"),
            models.UniqueConstraint(
                fields=["hypervisor", "api_port"],
                condition=models.Q(api_port__isnull=False),
                name="one_forward_per_host_port",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def version(self) -> K3sVersion:
        return self.k3s_version or self.cluster.k3s_version

    @property
    def domain_name(self) -> str:
        """Deterministic, so every libvirt call about this node is idempotent."""
        return f"{DOMAIN_PREFIX}{self.cluster.uuid.hex[:8]}-{self.name}"

    @property
    def volume_name(self) -> str:
        return volume_for(self.domain_name)


class NodeStep(models.Model):
    """When each of a node's five steps started and finished (durations, ETA)."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="steps")
    step = models.CharField(max_length=16, choices=Step.choices)
    attempt = models.PositiveSmallIntegerField(default=1)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    failed = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["node", "step"], name="one_row_per_node_step")
        ]

    def __str__(self) -> str:
        return f"{self.node} {self.step}"


class IssuedCredential(models.Model):
    """A kubeconfig client certificate handed out: listed per cluster and audited."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="credentials")
    user = models.ForeignKey("auth.User", null=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150)
    role = models.CharField(max_length=10)
    serial = models.CharField(max_length=40)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    organisation_path = "cluster__organisation"

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.username} ({self.role}) on {self.cluster}"
