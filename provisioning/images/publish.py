"""Publishing a base image: upload it to every hypervisor of a region, verify what landed,
and record it (the BaseImage row, one ImageReplica per host)."""

import hashlib
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from portal import audit
from portal.actor import Actor
from portal.errors import Invalid
from provisioning.drivers import get_driver
from provisioning.drivers.base import DriverError, HypervisorDriver
from provisioning.models import BaseImage, Hypervisor, ImageReplica, K3sVersion, Region
from provisioning.models import ReplicaState as S

CHUNK = 4 * 2**20
NO_UPLOAD = "test driver: no volume upload"


@dataclass(frozen=True)
class Outcome:
    host: str
    state: str
    detail: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def publish(
    actor: Actor, path: Path, region: Region, version: K3sVersion, volume: str, has_k3s: bool
) -> list[Outcome]:
    actor.require_staff()
    digest, size = sha256_of(path), path.stat().st_size
    current = BaseImage.objects.filter(version=version, region=region).first()
    if current and current.volume_name == volume and current.sha256 not in ("", digest):
        # Every node's disk is a copy-on-write overlay of this volume: new bytes under the
        # same name would corrupt them all at their next boot.
        raise Invalid(
            {"volume": f"{volume} holds another image that nodes' disks are built on; "
             "publish this one under a new --volume."}
        )  # fmt: skip
    with transaction.atomic():
        image, _ = BaseImage.objects.update_or_create(
            version=version,
            region=region,
            defaults={
                "volume_name": volume,
                "sha256": digest,
                "size_bytes": size,
                "has_k3s": has_k3s,
                "published_at": timezone.now(),
            },
        )
        audit.record("image.publish", image, actor, sha256=digest, size_bytes=size)
    return [_to_host(image, host, path) for host in Hypervisor.objects.filter(region=region)]


def _same(driver: HypervisorDriver, host: Hypervisor, image: BaseImage) -> bool:
    """Whether the host already has exactly this image: same size (a lookup), then the
    SHA-256 of what the download stream gives back."""
    size = driver.volume_physical_bytes(host.storage_pool, image.volume_name)
    if size != image.size_bytes:
        return False
    return driver.volume_sha256(host.storage_pool, image.volume_name) == image.sha256


def _to_host(image: BaseImage, host: Hypervisor, path: Path) -> Outcome:
    driver = get_driver(host.uri)
    try:
        if not driver.capabilities.volume_upload:
            # Said as it is: nothing was uploaded, only whether a volume of that name exists.
            present = driver.volume_exists(host.storage_pool, image.volume_name)
            state = S.PRESENT if present else S.MISSING
            outcome = Outcome(host.name, state, NO_UPLOAD)
        elif _same(driver, host, image):
            outcome = Outcome(host.name, S.PRESENT, "already there, same SHA-256")
        else:
            driver.upload_volume(host.storage_pool, image.volume_name, str(path))
            landed = driver.volume_sha256(host.storage_pool, image.volume_name)
            ok = landed == image.sha256
            outcome = Outcome(
                host.name,
                S.PRESENT if ok else S.MISMATCH,
                "uploaded, SHA-256 verified" if ok else f"uploaded, but SHA-256 is {landed}",
            )
    except DriverError as error:
        outcome = Outcome(host.name, S.MISSING, f"upload failed: {error.message}"[:300])
    ImageReplica.objects.update_or_create(
        image=image,
        hypervisor=host,
        defaults={
            "state": outcome.state,
            "sha256": image.sha256 if outcome.state == S.PRESENT else "",
            "detail": outcome.detail,
        },
    )
    return outcome
