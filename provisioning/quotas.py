"""An organisation's quota use, and the check every launch and scale-up passes."""

from dataclasses import dataclass

from django.db.models import Count, Sum

from portal.errors import Invalid
from portal.models import Organisation, Quota
from provisioning.models import Cluster, Node, NodeSize
from provisioning.states import CLUSTER_LIVE, NODE_LIVE


@dataclass(frozen=True)
class Usage:
    clusters: int = 0
    nodes: int = 0
    vcpus: int = 0
    memory_mib: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            self.clusters + other.clusters,
            self.nodes + other.nodes,
            self.vcpus + other.vcpus,
            self.memory_mib + other.memory_mib,
        )


def of_nodes(sizes: list[NodeSize], clusters: int = 0) -> Usage:
    return Usage(
        clusters=clusters,
        nodes=len(sizes),
        vcpus=sum(s.vcpus for s in sizes),
        memory_mib=sum(s.memory_mib for s in sizes),
    )


def usage(organisation: Organisation) -> Usage:
    nodes = Node.objects.filter(cluster__organisation=organisation, status__in=NODE_LIVE)
    totals = nodes.aggregate(
        n=Count("id"), v=Sum("pool__size__vcpus"), m=Sum("pool__size__memory_mib")
    )
    clusters = Cluster.objects.filter(organisation=organisation, status__in=CLUSTER_LIVE).count()
    return Usage(clusters, totals["n"] or 0, totals["v"] or 0, totals["m"] or 0)


def limits(organisation: Organisation) -> Usage:
    quota, _ = Quota.objects.get_or_create(organisation=organisation)
    return Usage(quota.clusters, quota.nodes, quota.vcpus, quota.memory_mib)


def shortfalls(after: Usage, limit: Usage) -> list[str]:
    return [
        f"{label} {used} of {allowed}"
        for label, used, allowed in (
            ("clusters", after.clusters, limit.clusters),
            ("nodes", after.nodes, limit.nodes),
            ("vCPUs", after.vcpus, limit.vcpus),
            ("memory MiB", after.memory_mib, limit.memory_mib),
        )
        if used > allowed
    ]


def check(organisation: Organisation, extra: Usage, field: str = "pools") -> None:
    """Raise Invalid on `field` when `extra` would exceed the quota.

    Callers hold the organisation's Quota row locked (select_for_update) so two
    concurrent launches cannot both pass.
    """
    over = shortfalls(usage(organisation) + extra, limits(organisation))
    if over:
        raise Invalid({field: f"Over your organisation's quota: {', '.join(over)}."})
