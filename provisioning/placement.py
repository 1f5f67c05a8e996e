"""Where each node runs: filter, then weigh, like Nova's scheduler.

Filter: active hosts of the region with free capacity for the size after overcommit.
Weigh: spread one cluster's nodes over as many hosts as possible (the seed's node
distribution), then pack for density (the host left with the least free room wins).
Claims are conditional UPDATEs, so two launches can never over-commit a host.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, ExpressionWrapper, F, FloatField, OuterRef, QuerySet
from django.utils import timezone

from provisioning.models import (
    Hypervisor,
    HypervisorState,
    ImageReplica,
    K3sVersion,
    Node,
    NodeSize,
    Region,
    ReplicaState,
)

BAD_REPLICA = [ReplicaState.MISSING, ReplicaState.MISMATCH]


def agent_silent_since() -> datetime:
    return timezone.now() - timedelta(seconds=settings.AGENT_SILENT_SECONDS)


def eligible(region: Region, version: K3sVersion | None = None) -> QuerySet[Hypervisor]:
    """Active hosts of the region that have the version's base image (where it is known)
    and, with host agents, an agent that answered recently."""
    hosts = Hypervisor.objects.filter(region=region, state=HypervisorState.ACTIVE)
    if version is not None:
        bad = ImageReplica.objects.filter(
            hypervisor=OuterRef("pk"), image__version=version, state__in=BAD_REPLICA
        )
        hosts = hosts.filter(~Exists(bad))
    if settings.HOST_QUEUES:
        hosts = hosts.filter(agent_seen_at__gte=agent_silent_since())
    return hosts


class PlacementError(Exception):
    """Nothing fits; the message names what is short."""


@dataclass
class _Host:
    id: int
    name: str
    free_vcpus: int
    free_memory_mib: int
    cluster_nodes: int = 0


@dataclass(frozen=True)
class Verdict:
    host: str
    nodes: int
    reason: str


@dataclass
class Plan:
    region: Region
    # One hypervisor id per requested node, in request order.
    hosts: list[int] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)

    @property
    def host_count(self) -> int:
        return len(set(self.hosts))

    @property
    def summary(self) -> str:
        nodes = len(self.hosts)
        return (
            f"{nodes} node{'s' * (nodes != 1)} on {self.host_count} "
            f"host{'s' * (self.host_count != 1)} in {self.region.slug}"
        )


def _candidates(region: Region, existing: Counter[int], version: K3sVersion | None) -> list[_Host]:
    rows = eligible(region, version).values_list(
        "id",
        "name",
        "vcpus_total",
        "cpu_overcommit",
        "vcpus_allocated",
        "memory_mib_total",
        "memory_overcommit",
        "memory_mib_allocated",
    )
    return [
        _Host(
            id=pk,
            name=name,
            free_vcpus=int(vcpus * cpu_ratio) - vcpus_used,
            free_memory_mib=int(memory * memory_ratio) - memory_used,
            cluster_nodes=existing[pk],
        )
        for pk, name, vcpus, cpu_ratio, vcpus_used, memory, memory_ratio, memory_used in rows
    ]


def plan(
    region: Region,
    demands: list[NodeSize],
    existing: Counter[int] | None = None,
    version: K3sVersion | None = None,
) -> Plan:
    """Choose a host for every node in `demands` (one NodeSize per node).

    `existing` counts the cluster's current nodes per host, so a scale-up keeps spreading.
    Raises PlacementError naming what is short when any node does not fit.
    """
    hosts = _candidates(region, existing or Counter(), version)
    result = Plan(region=region, names={h.id: h.name for h in hosts})
    placed: Counter[int] = Counter()
    # Biggest first: they are the hardest to fit.
    order = sorted(range(len(demands)), key=lambda i: -demands[i].memory_mib)
    chosen: dict[int, int] = {}
    for index in order:
        size = demands[index]
        fitting = [
            h for h in hosts if h.free_vcpus >= size.vcpus and h.free_memory_mib >= size.memory_mib
        ]
        if not fitting:
            short = sum(1 for i in order if i not in chosen and demands[i] == size)
            raise PlacementError(
                f"Not enough capacity in region {region.slug} for {short} more "
                f"node{'s' * (short != 1)} of size {size.slug} "
                f"({size.vcpus} vCPU, {size.memory_mib} MiB each)."
            )
        best = min(
            fitting,
            key=lambda h: (
                h.cluster_nodes,
                (h.free_vcpus - size.vcpus) / size.vcpus
                + (h.free_memory_mib - size.memory_mib) / size.memory_mib,
                h.name,
            ),
        )
        best.free_vcpus -= size.vcpus
        best.free_memory_mib -= size.memory_mib
        best.cluster_nodes += 1
        placed[best.id] += 1
        chosen[index] = best.id
    result.hosts = [chosen[i] for i in range(len(demands))]
    result.verdicts = [
        Verdict(h.name, placed[h.id], _reason(h, placed[h.id])) for h in hosts if placed[h.id]
    ]
    return result


def _reason(host: _Host, count: int) -> str:
    return (
        f"{count} node{'s' * (count != 1)}: fewest of this cluster's nodes, then tightest fit "
        f"({host.free_vcpus} vCPU and {host.free_memory_mib} MiB left)"
    )


def explain(region: Region, size: NodeSize, version: K3sVersion | None = None) -> list[Verdict]:
    """Why each host of the region would or would not take a node of `size` (for staff)."""
    verdicts = []
    without_image = set(
        ImageReplica.objects.filter(
            image__version=version, image__region=region, state__in=BAD_REPLICA
        ).values_list("hypervisor_id", flat=True)
    )
    for host in Hypervisor.objects.filter(region=region).order_by("name"):
        free_vcpus = host.vcpus_capacity - host.vcpus_allocated
        free_memory = host.memory_mib_capacity - host.memory_mib_allocated
        silent = host.agent_seen_at is None or host.agent_seen_at < agent_silent_since()
        if host.state != HypervisorState.ACTIVE:
            reason = f"rejected: {host.state}"
        elif host.pk in without_image:
            reason = f"rejected: no good copy of the {version} base image"
        elif settings.HOST_QUEUES and silent:
            reason = "rejected: its host agent is silent"
        elif free_vcpus < size.vcpus:
            reason = f"rejected: {free_vcpus} vCPU free, needs {size.vcpus}"
        elif free_memory < size.memory_mib:
            reason = f"rejected: {free_memory} MiB free, needs {size.memory_mib}"
        else:
            reason = f"fits: {free_vcpus} vCPU and {free_memory} MiB free"
        verdicts.append(Verdict(host.name, 0, reason))
    return verdicts


class _Raced(Exception):
    """A host filled up between planning and claiming."""


def claim(
    region: Region,
    demands: list[NodeSize],
    existing: Counter[int] | None = None,
    version: K3sVersion | None = None,
) -> Plan:
    """Plan and claim capacity for every node, atomically; retries when a race is lost.

    Must run inside the caller's transaction: the claims commit or roll back with the rows
    that hold them.
    """
    for _attempt in range(3):
        chosen = plan(region, demands, existing, version)
        try:
            with transaction.atomic():
                _claim_all(chosen, demands)
            return chosen
        except _Raced:
            continue
    raise PlacementError(f"Capacity in region {region.slug} changed too fast; try again.")


def _claim_all(chosen: Plan, demands: list[NodeSize]) -> None:
    need: dict[int, list[int]] = {}
    for host_id, size in zip(chosen.hosts, demands, strict=True):
        vcpus, memory = need.setdefault(host_id, [0, 0])
        need[host_id] = [vcpus + size.vcpus, memory + size.memory_mib]
    for host_id, (vcpus, memory) in sorted(need.items()):  # fixed order: no deadlocks
        cpu_room = ExpressionWrapper(
            F("vcpus_total") * F("cpu_overcommit") - vcpus, output_field=FloatField()
        )
        memory_room = ExpressionWrapper(
            F("memory_mib_total") * F("memory_overcommit") - memory, output_field=FloatField()
        )
        updated = Hypervisor.objects.filter(
            pk=host_id,
            state=HypervisorState.ACTIVE,
            vcpus_allocated__lte=cpu_room,
            memory_mib_allocated__lte=memory_room,
        ).update(
            vcpus_allocated=F("vcpus_allocated") + vcpus,
            memory_mib_allocated=F("memory_mib_allocated") + memory,
        )
        if not updated:
            raise _Raced


def release(node: Node) -> bool:
    """Give the node's capacity back, exactly once (False when already given back)."""
    with transaction.atomic():
        held = Node.objects.filter(pk=node.pk, claimed_vcpus__gt=0).values_list(
            "hypervisor_id", "claimed_vcpus", "claimed_memory_mib"
        )
        row = held.select_for_update().first()
        if row is None:
            return False
        host_id, vcpus, memory = row
        Node.objects.filter(pk=node.pk).update(claimed_vcpus=0, claimed_memory_mib=0)
        Hypervisor.objects.filter(pk=host_id).update(
            vcpus_allocated=F("vcpus_allocated") - vcpus,
            memory_mib_allocated=F("memory_mib_allocated") - memory,
        )
    node.claimed_vcpus = node.claimed_memory_mib = 0
    return True
