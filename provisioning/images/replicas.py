"""Where each base image is: one ImageReplica per (image, host), kept by the inventory
sync and by publishing. Placement leaves out hosts whose replica is missing or wrong."""

from provisioning.drivers.base import HypervisorDriver
from provisioning.models import BaseImage, Hypervisor, ImageReplica, ReplicaState


def check_replicas(host: Hypervisor, driver: HypervisorDriver) -> dict[int, str]:
    """Each of the region's images: present or missing in the host's pool (a cheap lookup;
    digests are checked when publishing, not every few seconds)."""
    return {
        image.pk: (
            ReplicaState.PRESENT
            if driver.volume_exists(host.storage_pool, image.volume_name)
            else ReplicaState.MISSING
        )
        for image in BaseImage.objects.filter(region_id=host.region_id)
    }


def record_replicas(host: Hypervisor, states: dict[int, str]) -> None:
    for image_id, state in states.items():
        replica, created = ImageReplica.objects.get_or_create(
            image_id=image_id, hypervisor=host, defaults={"state": state}
        )
        # A mismatch found by publishing stands until the image is published again.
        if not created and replica.state != state and replica.state != ReplicaState.MISMATCH:
            ImageReplica.objects.filter(pk=replica.pk).update(state=state, detail="")
