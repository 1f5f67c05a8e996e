"""Provisioning's models, one module per part: the supercluster, tenant clusters, and the
health tenant nodes report. Import them from here."""

from provisioning.choices import CpuMode, OrphanResolution, ReplicaState, VirtType
from provisioning.models.clusters import (
    DOMAIN_PREFIX,
    Cluster,
    IssuedCredential,
    Node,
    NodePool,
    NodeStep,
    volume_for,
)
from provisioning.models.health import HealthState, NodeHealth, NodeHeartbeat
from provisioning.models.supercluster import (
    BaseImage,
    HostSample,
    Hypervisor,
    ImageReplica,
    K3sVersion,
    NodeSize,
    OrphanDomain,
    Region,
)
from provisioning.states import ClusterStatus, HypervisorState, NodeStatus

__all__ = [
    "DOMAIN_PREFIX",
    "BaseImage",
    "Cluster",
    "ClusterStatus",
    "CpuMode",
    "HealthState",
    "HostSample",
    "Hypervisor",
    "HypervisorState",
    "ImageReplica",
    "IssuedCredential",
    "K3sVersion",
    "Node",
    "NodeHealth",
    "NodeHeartbeat",
    "NodePool",
    "NodeSize",
    "NodeStatus",
    "NodeStep",
    "OrphanDomain",
    "OrphanResolution",
    "Region",
    "ReplicaState",
    "VirtType",
    "volume_for",
]
