"""Tenant L2 networks (a VXLAN segment each), their addresses, and firewalls."""

import uuid
from typing import Any, Protocol

from django.db import models


class Region(Protocol):
    """Provisioning's region, as networking uses it (it holds networks, never imports them)."""

    pk: Any
    slug: str


def related_model(model: type[models.Model], field: str) -> type[models.Model]:
    """The model at the other end of a relation (provisioning's regions and clusters), reached
    through the relation so networking never imports provisioning."""
    other = model._meta.get_field(field).related_model
    assert isinstance(other, type) and issubclass(other, models.Model)
    return other


def regions() -> models.QuerySet:
    return Network.region_model()._default_manager.order_by("slug")


class LiveQuerySet(models.QuerySet):
    def live(self) -> "LiveQuerySet":
        """Not retired (see `deleted_at`)."""
        return self.filter(deleted_at__isnull=True)


class Network(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organisation = models.ForeignKey(
        "portal.Organisation", on_delete=models.PROTECT, related_name="networks"
    )
    region = models.ForeignKey(
        "provisioning.Region", on_delete=models.PROTECT, related_name="networks"
    )
    name = models.CharField(max_length=63)
    cidr = models.CharField(max_length=18)
    gateway = models.GenericIPAddressField(protocol="IPv4")
    segment_id = models.PositiveIntegerField(help_text="VXLAN network identifier (VNI)")
    is_default = models.BooleanField(default=False)
    # Outbound NAT through the hosts (off: the network reaches nothing outside itself but
    # its metadata service).
    egress = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Deleted clusters keep pointing at their network (a protected key), so a network they
    # used is retired instead of deleted: renamed and its segment parked outside the VNI space.
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = LiveQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["region", "segment_id"], name="segment_per_region"),
            models.UniqueConstraint(fields=["organisation", "name"], name="network_name_per_org"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.cidr})"

    @classmethod
    def region_model(cls) -> type[models.Model]:
        return related_model(cls, "region")

    @property
    def libvirt_name(self) -> str:
        return f"tn-{self.segment_id}"

    @property
    def bridge(self) -> str:
        return f"tnbr{self.segment_id}"


class Firewall(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organisation = models.ForeignKey(
        "portal.Organisation", on_delete=models.PROTECT, related_name="firewalls"
    )
    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="firewalls")
    name = models.CharField(max_length=63)
    # [{"direction", "protocol", "ports", "cidr", "label"}], validated by networking.rules
    rules = models.JSONField(default=list)
    revision = models.PositiveIntegerField(default=1)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)  # retired, as for Network

    objects = LiveQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name"], name="firewall_name_per_org")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def nwfilter_name(self) -> str:
        return f"k3s-fw-{self.uuid.hex[:12]}"


class Port(models.Model):
    """One address and MAC of a network, held by an owner networking knows only by an
    opaque id (a node's uuid); the unique constraints make allocation race-free."""

    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="ports")
    owner = models.CharField(max_length=64)
    address = models.GenericIPAddressField(protocol="IPv4")
    mac = models.CharField(max_length=17)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["network", "id"]
        constraints = [
            models.UniqueConstraint(fields=["network", "address"], name="one_holder_per_address"),
            models.UniqueConstraint(fields=["network", "mac"], name="one_port_per_mac"),
            models.UniqueConstraint(fields=["network", "owner"], name="one_port_per_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.address} in {self.network}"


class QuarantinedAddress(models.Model):
    """An address given back while the host's dnsmasq may still hold its old MAC's lease: no
    port gets it until `released_at` is ADDRESS_QUARANTINE_SECONDS old, or a worker saw the
    lease gone. A Port stays "held", so "nothing leaked" still means no ports."""

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="quarantined")
    address = models.GenericIPAddressField(protocol="IPv4")
    mac = models.CharField(max_length=17)
    released_at = models.DateTimeField()

    class Meta:
        ordering = ["network", "released_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["network", "address"], name="one_quarantine_per_address"
            )
        ]

    def __str__(self) -> str:
        return f"{self.address} in {self.network} (quarantined since {self.released_at})"


class HostNetworkLock(models.Model):
    """A row per network per hypervisor, locked (SELECT ... FOR UPDATE) while a worker changes
    that network on that host, so DHCP entries are recomputed and applied one at a time."""

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="host_locks")
    hypervisor = models.ForeignKey(
        "provisioning.Hypervisor", on_delete=models.CASCADE, related_name="network_locks"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["network", "hypervisor"], name="one_lock_per_host_network"
            )
        ]

    def __str__(self) -> str:
        return f"{self.network} on {self.hypervisor_id}"


class FirewallRollout(models.Model):
    """What the last rollout of a firewall did on one hypervisor: enforced there, or why not."""

    firewall = models.ForeignKey(Firewall, on_delete=models.CASCADE, related_name="rollouts")
    hypervisor = models.ForeignKey(
        "provisioning.Hypervisor", on_delete=models.CASCADE, related_name="firewall_rollouts"
    )
    revision = models.PositiveIntegerField()
    enforced = models.BooleanField()
    reason = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    organisation_path = "firewall__organisation"

    class Meta:
        ordering = ["hypervisor__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["firewall", "hypervisor"], name="one_rollout_per_firewall_host"
            )
        ]

    def __str__(self) -> str:
        state = "enforced" if self.enforced else f"not enforced ({self.reason})"
        return f"{self.firewall} r{self.revision} on {self.hypervisor}: {state}"
