"""The fixed vocabularies of provisioning's models that are not lifecycle statuses (those
live in states.py with their transition tables): how a host virtualises, and what became
of an image replica or an orphan domain."""

from django.db import models


class VirtType(models.TextChoices):
    KVM = "kvm", "KVM (hardware)"
    QEMU = "qemu", "QEMU (software, TCG)"


class CpuMode(models.TextChoices):
    HOST_MODEL = "host-model"
    HOST_PASSTHROUGH = "host-passthrough"
    CUSTOM = "custom", "a named model (cpu_model)"
    NONE = "none", "no <cpu> element (QEMU's default)"


class ReplicaState(models.TextChoices):
    PRESENT = "present"
    MISSING = "missing"
    MISMATCH = "mismatch"  # a volume of that name whose digest is not the image's


class OrphanResolution(models.TextChoices):
    REMOVED = "removed", "Removed by reconciliation"
    VANISHED = "vanished", "Gone or owned again before the grace period ended"
