"""Putting a base image on a host: libvirt's volume upload stream, the SHA-256 read back
through the download stream, and publishing's per-host record.

The test driver has no volume upload (Capabilities.volume_upload) and says so; the real
path runs against qemu:///system (skipped with the reason when no libvirtd answers) into a
temporary directory pool that is removed afterwards.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.actor import Actor, Via
from provisioning import inventory
from provisioning.drivers.base import DriverError, PermanentDriverError
from provisioning.drivers.libvirt import LibvirtDriver
from provisioning.images import publish
from provisioning.models import (
    BaseImage,
    Hypervisor,
    HypervisorState,
    ImageReplica,
    K3sVersion,
    Region,
    ReplicaState,
)
from tests.drivers.conftest import BASE_VOLUME

URI = "qemu:///system"


def test_the_test_driver_has_no_volume_upload(driver: LibvirtDriver, tmp_path: Path) -> None:
    assert driver.capabilities.volume_upload is False
    image = tmp_path / "base.qcow2"
    image.write_bytes(b"x" * 1024)
    with pytest.raises(PermanentDriverError) as raised:
        driver.upload_volume("default", "new.qcow2", str(image))
    assert raised.value.code == "unsupported"
    assert driver.volume_sha256("default", BASE_VOLUME) is None
    assert not driver.volume_exists("default", "new.qcow2")
    assert driver.volume_physical_bytes("default", "new.qcow2") is None
    assert driver.volume_physical_bytes("default", BASE_VOLUME) is not None


@pytest.fixture
def real() -> Iterator[tuple[LibvirtDriver, str]]:
    driver = LibvirtDriver(URI)
    try:
        driver.host_facts()
    except DriverError as err:
        pytest.skip(f"no libvirtd answering on {URI}: {err}")
    pool = f"k3st-up-{secrets.token_hex(3)}"
    # QEMU runs as libvirt-qemu: the pool must sit in a directory it can traverse.
    root = Path(tempfile.mkdtemp(prefix="k3s-upload-"))
    root.chmod(0o755)
    try:
        driver.ensure_dir_pool(pool, str(root / "pool"))
        yield driver, pool
    finally:
        driver.delete_volume(pool, "base.qcow2")
        driver.delete_pool(pool)
        shutil.rmtree(root)


def small_qcow2(tmp_path: Path) -> Path:
    image = tmp_path / "small.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "64M"], check=True)
    return image


@pytest.mark.libvirtd
def test_upload_lands_the_same_bytes_and_reads_back_its_digest(
    real: tuple[LibvirtDriver, str], tmp_path: Path
) -> None:
    driver, pool = real
    image = small_qcow2(tmp_path)
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    driver.upload_volume(pool, "base.qcow2", str(image))
    assert driver.volume_sha256(pool, "base.qcow2") == digest
    assert driver.volume_physical_bytes(pool, "base.qcow2") == image.stat().st_size
    # Uploading again replaces it (a new build under the same name).
    image.write_bytes(image.read_bytes() + b"\0" * 512)
    driver.upload_volume(pool, "base.qcow2", str(image))
    replaced = hashlib.sha256(image.read_bytes()).hexdigest()
    assert driver.volume_sha256(pool, "base.qcow2") == replaced
    assert driver.volume_sha256(pool, "nothing.qcow2") is None


@pytest.mark.libvirtd
@pytest.mark.django_db
def test_publish_verifies_records_skips_and_the_sync_follows(
    real: tuple[LibvirtDriver, str], tmp_path: Path
) -> None:
    driver, pool = real
    region = Region.objects.create(slug="real", name="Real")
    version = K3sVersion.objects.create(version="v1.31.4+k3s1")
    host = Hypervisor.objects.create(
        name="local", region=region, uri=URI, storage_pool=pool, state=HypervisorState.ACTIVE
    )
    image = small_qcow2(tmp_path)
    actor = Actor.system(Via.COMMAND)

    [first] = publish.publish(actor, image, region, version, "base.qcow2", has_k3s=False)
    assert (first.state, first.detail) == (ReplicaState.PRESENT, "uploaded, SHA-256 verified")
    row = BaseImage.objects.get(region=region, version=version)
    assert row.sha256 == hashlib.sha256(image.read_bytes()).hexdigest()
    assert (row.size_bytes, row.has_k3s) == (image.stat().st_size, False)
    replica = ImageReplica.objects.get(image=row, hypervisor=host)
    assert (replica.state, replica.sha256) == (ReplicaState.PRESENT, row.sha256)

    [again] = publish.publish(actor, image, region, version, "base.qcow2", has_k3s=False)
    assert again.detail == "already there, same SHA-256"

    inventory.sync_hypervisor(host.pk)
    assert ImageReplica.objects.get(pk=replica.pk).state == ReplicaState.PRESENT
    # Someone swaps the file for another of a different size: the sync sees the size.
    other = tmp_path / "other.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(other), "1G"], check=True)
    other.write_bytes(other.read_bytes() + b"\0" * 4096)
    driver.upload_volume(pool, "base.qcow2", str(other))
    inventory.sync_hypervisor(host.pk)
    replica.refresh_from_db()
    assert replica.state == ReplicaState.MISMATCH
    assert replica.detail == f"{other.stat().st_size} bytes on the host, {row.size_bytes} published"
    # Publishing again puts the right image back.
    [fixed] = publish.publish(actor, image, region, version, "base.qcow2", has_k3s=False)
    assert fixed.state == ReplicaState.PRESENT
    driver.delete_volume(pool, "base.qcow2")
    inventory.sync_hypervisor(host.pk)
    assert ImageReplica.objects.get(pk=replica.pk).state == ReplicaState.MISSING
