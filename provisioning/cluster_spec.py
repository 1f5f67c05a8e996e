"""What a customer asks for when launching a cluster, and the rules it must follow.

The rules (name patterns, the pool cap) live here, under the services, so every way in
(the API, the form, the scaling page, a command) is held to the same ones.
"""

import dataclasses
import re
from dataclasses import dataclass

from portal.errors import Invalid
from provisioning import k3s_flags
from provisioning.models import K3sVersion, NodeSize, Region

DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_LABEL_HELP = "lowercase letters, digits and '-', starting with a letter"
CLUSTER_NAME_MAX = 40
POOL_NAME_MAX = 20
POOL_MAX_NODES = 50


@dataclass(frozen=True)
class PoolRequest:
    name: str
    size: NodeSize
    count: int
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    taints: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClusterRequest:
    name: str
    region: Region
    k3s_version: K3sVersion
    pools: tuple[PoolRequest, ...]
    network: str | None = None
    firewall: str | None = None
    cni: str = k3s_flags.Cni.FLANNEL

    @property
    def sizes(self) -> list[NodeSize]:
        return [pool.size for pool in self.pools for _ in range(pool.count)]


def label_problem(value: str, longest: int) -> str | None:
    if not value or len(value) > longest or not DNS_LABEL.match(value):
        return f"Use {DNS_LABEL_HELP} (at most {longest})."
    return None


def count_problem(count: int) -> str | None:
    if not 1 <= count <= POOL_MAX_NODES:
        return f"A pool has 1 to {POOL_MAX_NODES} nodes."
    return None


def check_pool_count(count: int, field: str = "count") -> None:
    problem = count_problem(count)
    if problem:
        raise Invalid({field: problem})


def validate(spec: ClusterRequest) -> None:
    """Invalid naming every field that breaks a rule (the first problem of each); a pool's
    fields by path (`pools.0.count`), as DRF names nested fields."""
    errors: dict[str, str] = {}
    problem = label_problem(spec.name, CLUSTER_NAME_MAX)
    if problem:
        errors["name"] = problem
    for index, pool in enumerate(spec.pools):
        for field, why in (
            ("name", label_problem(pool.name, POOL_NAME_MAX)),
            ("count", count_problem(pool.count)),
            ("labels", k3s_flags.label_problem(pool.labels)),
            ("taints", k3s_flags.taint_problem(list(pool.taints))),
        ):
            if why:
                errors[f"pools.{index}.{field}"] = why
    names = [pool.name for pool in spec.pools]
    if not spec.pools:
        errors["pools"] = "A cluster has at least one pool."
    elif len(set(names)) != len(names) and not any(k.startswith("pools.") for k in errors):
        errors["pools"] = "Pool names must be unique."
    if errors:
        raise Invalid(errors)
