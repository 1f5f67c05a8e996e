"""The supercluster: regions, hypervisors, node sizes, K3s versions, base images, and the
orphan domains reconciliation finds on hosts."""

import math
import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from portal.fields import EncryptedTextField
from provisioning.choices import CpuMode, OrphanResolution, ReplicaState, VirtType
from provisioning.drivers.base import Virtualisation
from provisioning.states import HYPERVISOR_TRANSITIONS, HypervisorState


class Region(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Hypervisor(models.Model):
    """A libvirt host. Totals come from libvirt (the inventory sync); allocations are the
    portal's own claims, since libvirt (and its test driver) does not account for them."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.SlugField(max_length=63, unique=True)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="hypervisors")
    uri = models.CharField(max_length=500, help_text="libvirt URI, e.g. qemu+ssh://host/system")
    storage_pool = models.CharField(max_length=100, default="default")
    state = models.CharField(
        max_length=12, choices=HypervisorState.choices, default=HypervisorState.ACTIVE
    )
    vcpus_total = models.PositiveIntegerField(default=0)
    memory_mib_total = models.PositiveBigIntegerField(default=0)
    cpu_overcommit = models.FloatField(default=4.0)
    memory_overcommit = models.FloatField(default=1.0)
    vcpus_allocated = models.PositiveIntegerField(default=0)
    memory_mib_allocated = models.PositiveBigIntegerField(default=0)
    domain_count = models.PositiveIntegerField(default=0)
    synced_at = models.DateTimeField(null=True, blank=True)
    sync_failures = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    # SSH key or TLS client key for a remote URI, Fernet-encrypted (see portal.secrets).
    credentials = EncryptedTextField(db_column="credentials_encrypted", blank=True)
    # How its guests are virtualised. Blank = what the host's domcapabilities offer (filled
    # in by the inventory sync): kvm only where libvirt reports it usable, else qemu (TCG).
    virt_type = models.CharField(max_length=8, choices=VirtType.choices, blank=True)
    cpu_mode = models.CharField(max_length=20, choices=CpuMode.choices, blank=True)
    cpu_model = models.CharField(max_length=64, blank=True, help_text="for cpu_mode=custom")
    machine_type = models.CharField(max_length=64, blank=True, help_text='e.g. "pc-q35-7.2"')
    # The host agent (a Celery worker on queue host.<name>) reports here; a host whose
    # agent is silent takes no new nodes.
    agent_seen_at = models.DateTimeField(null=True, blank=True)
    # Set while staff drain the host: its nodes move elsewhere (provisioning.draining).
    draining_since = models.DateTimeField(null=True, blank=True)
    # Where this host sends and takes tenant networks' VXLAN traffic; blank: its tenant
    # segments reach no other host.
    underlay_address = models.GenericIPAddressField(protocol="IPv4", null=True, blank=True)
    # Where customers reach this host's forwarded ports (a server node's Kubernetes API);
    # blank: kubeconfigs name the server's tenant address.
    public_address = models.GenericIPAddressField(protocol="IPv4", null=True, blank=True)

    TRANSITIONS = HYPERVISOR_TRANSITIONS
    STATE_FIELD = "state"

    class Meta:
        ordering = ["region__slug", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(vcpus_allocated__gte=0) & Q(memory_mib_allocated__gte=0),
                name="hypervisor_allocations_non_negative",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if (self.cpu_mode == CpuMode.CUSTOM) != bool(self.cpu_model):
            raise ValidationError(
                {"cpu_model": "Name a CPU model with cpu_mode custom, and only then."}
            )

    @property
    def virtualisation(self) -> Virtualisation:
        """The host's settings, blanks filled as the sync would: host-model under KVM,
        QEMU's default CPU under TCG."""
        virt_type = self.virt_type or VirtType.KVM
        default_cpu = CpuMode.HOST_MODEL if virt_type == VirtType.KVM else CpuMode.NONE
        return Virtualisation(
            virt_type=virt_type,
            cpu_mode=self.cpu_mode or default_cpu,
            cpu_model=self.cpu_model,
            machine_type=self.machine_type,
        )

    @property
    def vcpus_capacity(self) -> int:
        return math.floor(self.vcpus_total * self.cpu_overcommit)

    @property
    def memory_mib_capacity(self) -> int:
        return math.floor(self.memory_mib_total * self.memory_overcommit)


class NodeSize(models.Model):
    slug = models.SlugField(max_length=40, unique=True)
    vcpus = models.PositiveSmallIntegerField()
    memory_mib = models.PositiveIntegerField()
    disk_gib = models.PositiveIntegerField()
    monthly_price = models.DecimalField(max_digits=8, decimal_places=2)

    class Meta:
        ordering = ["vcpus", "memory_mib"]

    def __str__(self) -> str:
        return self.slug


class K3sVersion(models.Model):
    version = models.CharField(max_length=40, unique=True, help_text="e.g. v1.31.4+k3s1")
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_version"
            )
        ]

    def __str__(self) -> str:
        return self.version

    @property
    def slug(self) -> str:
        return self.version


class BaseImage(models.Model):
    """The region's base volume for a K3s version (OS + K3s airgap bundle), which every
    node's disk clones copy-on-write. It lives in each hypervisor's storage pool."""

    version = models.ForeignKey(K3sVersion, on_delete=models.PROTECT, related_name="images")
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="images")
    volume_name = models.CharField(max_length=200)
    # What `manage.py publish_image` uploaded; blank for a volume put in place by hand.
    sha256 = models.CharField(max_length=64, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    # False: the image was built without a K3s bundle; launch_k3s fails k3s_bundle_missing.
    has_k3s = models.BooleanField(default=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "region"], name="one_image_per_region")
        ]

    def __str__(self) -> str:
        return f"{self.version} in {self.region}: {self.volume_name}"


class ImageReplica(models.Model):
    """A base image on one hypervisor, as publishing and the inventory sync found it.
    Placement only uses hosts where the cluster's image is present."""

    image = models.ForeignKey(BaseImage, on_delete=models.CASCADE, related_name="replicas")
    hypervisor = models.ForeignKey(Hypervisor, on_delete=models.CASCADE, related_name="replicas")
    state = models.CharField(max_length=10, choices=ReplicaState.choices)
    sha256 = models.CharField(max_length=64, blank=True)
    checked_at = models.DateTimeField(auto_now=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["image", "hypervisor__name"]
        constraints = [
            models.UniqueConstraint(fields=["image", "hypervisor"], name="one_replica_per_host")
        ]

    def __str__(self) -> str:
        return f"{self.image.volume_name} on {self.hypervisor}: {self.state}"


class OrphanDomain(models.Model):
    """A domain with the portal's prefix that no live node owns, found by reconciliation.

    Shown to staff while open; reconciliation undefines it (and its disk) once it has been
    orphaned for ORPHAN_GRACE_SECONDS. `removed_at` closes the record either way."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    hypervisor = models.ForeignKey(Hypervisor, on_delete=models.CASCADE, related_name="orphans")
    name = models.CharField(max_length=200)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=10, choices=OrphanResolution.choices, blank=True)

    class Meta:
        ordering = ["-first_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["hypervisor", "name"],
                condition=Q(removed_at__isnull=True),
                name="one_open_orphan_per_domain",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} on {self.hypervisor}"


class HostSample(models.Model):
    """A host's allocation at a moment (written by the inventory sync, at most once a
    minute, a day of them kept): the staff host page draws it over time."""

    hypervisor = models.ForeignKey(Hypervisor, on_delete=models.CASCADE, related_name="samples")
    at = models.DateTimeField()
    vcpus_allocated = models.PositiveIntegerField()
    memory_mib_allocated = models.PositiveIntegerField()
    domains = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["hypervisor", "at"])]

    def __str__(self) -> str:
        return f"{self.hypervisor} at {self.at:%H:%M}"
