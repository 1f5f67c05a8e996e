"""What a customer asks for when launching a cluster, and the rules it must follow.

The rules (name patterns, the pool cap) live here, under the services, so every way in
(the API, the form, the scaling page, a command) is held to the same ones.
"""

import re
from dataclasses import dataclass

from portal.errors import Invalid
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


@dataclass(frozen=True)
class ClusterRequest:
    name: str
    region: Region
    k3s_version: K3sVersion
    pools: tuple[PoolRequest, ...]
    network: str | None = None
    firewall: str | None = None

    @property
    def sizes(self) -> list[NodeSize]:
        return [pool.size for pool in self.pools for _ in range(pool.count)]


def check_label(value: str, longest: int, field: str, what: str) -> None:
    if not value or len(value) > longest or not DNS_LABEL.match(value):
        raise Invalid({field: f"{what}: use 1-{longest} {DNS_LABEL_HELP}."})


def check_pool_count(count: int, field: str = "count") -> None:
    if not 1 <= count <= POOL_MAX_NODES:
        raise Invalid({field: f"A pool has 1 to {POOL_MAX_NODES} nodes."})


def validate(spec: ClusterRequest) -> None:
    """Invalid naming the field when the request breaks a rule."""
    check_label(spec.name, CLUSTER_NAME_MAX, "name", "Cluster name")
    if not spec.pools:
        raise Invalid({"pools": "A cluster has at least one pool."})
    names = [pool.name for pool in spec.pools]
    if len(set(names)) != len(names):
        raise Invalid({"pools": "Pool names must be unique."})
    for pool in spec.pools:
        check_label(pool.name, POOL_NAME_MAX, "pools", f"Pool name {pool.name!r}")
        check_pool_count(pool.count, "pools")
