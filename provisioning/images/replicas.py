"""Where each base image is: one ImageReplica per (image, host), kept by the inventory
sync and by publishing. Placement leaves out hosts whose replica is missing or wrong."""

from dataclasses import dataclass

from provisioning.drivers.base import HypervisorDriver
from provisioning.models import BaseImage, Hypervisor, ImageReplica, ReplicaState


@dataclass(frozen=True)
class Seen:
    state: str
    detail: str


def check_replicas(host: Hypervisor, driver: HypervisorDriver) -> dict[int, Seen]:
    """Each of the region's images on the host: present, missing, or (where the driver can
    tell the file's size) a mismatch with the published size. Cheap metadata lookups only:
    digests are checked when publishing, not every few seconds."""
    seen = {}
    for image in BaseImage.objects.filter(region_id=host.region_id):
        if driver.capabilities.volume_upload:
            size = driver.volume_physical_bytes(host.storage_pool, image.volume_name)
        else:  # the test driver: whether it is there, nothing more
            there = driver.volume_exists(host.storage_pool, image.volume_name)
            size = 0 if there else None
        if size is None:
            seen[image.pk] = Seen(ReplicaState.MISSING, f"no volume {image.volume_name}")
        elif image.size_bytes and size and size != image.size_bytes:
            detail = f"{size} bytes on the host, {image.size_bytes} published"
            seen[image.pk] = Seen(ReplicaState.MISMATCH, detail)
        else:
            seen[image.pk] = Seen(ReplicaState.PRESENT, "")
    return seen


def record_replicas(host: Hypervisor, seen: dict[int, Seen]) -> None:
    for image_id, now in seen.items():
        replica, created = ImageReplica.objects.get_or_create(
            image_id=image_id,
            hypervisor=host,
            defaults={"state": now.state, "detail": now.detail},
        )
        if created:
            continue
        # A wrong digest found by publishing stands until the image is published again
        # (the sync cannot see digests); anything else follows what the sync sees.
        if replica.state == ReplicaState.MISMATCH and replica.detail.startswith("uploaded"):
            continue
        # Keep publishing's detail while the replica stays as it found it.
        detail = replica.detail if replica.state == now.state and not now.detail else now.detail
        replica.state, replica.detail = now.state, detail
        replica.save(update_fields=["state", "detail", "checked_at"])
