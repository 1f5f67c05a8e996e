"""Business operations on clusters: create, delete, scale, retry, kubeconfigs.

Each runs in one transaction: validate, check quota, place, claim, create rows, write the
event, audit, and enqueue the pipeline on commit. Nothing is half-created on failure.
"""

from collections import Counter

from django.db import IntegrityError, transaction
from django.utils import timezone

from networking import services as networking
from observability import events, tracing
from portal import audit
from portal.actor import Action, Actor
from portal.errors import Invalid
from portal.models import Organisation, Quota
from provisioning import (
    addresses,
    cluster_spec,
    enqueue,
    guest_seed,
    notify,
    pipeline,
    pki,
    placement,
    quotas,
    steps,
)
from provisioning.cluster_spec import ClusterRequest
from provisioning.models import BaseImage, Cluster, K3sVersion, Node, NodePool, NodeStep
from provisioning.states import (
    CLUSTER_DELETABLE,
    CLUSTER_GONE,
    CLUSTER_LIVE,
    CLUSTER_SETTLED,
    NODE_ACTIVE,
    NODE_GONE,
    NODE_LIVE,
    ClusterStatus,
    NodeStatus,
    transition,
)

C, N = ClusterStatus, NodeStatus


def _lock_quota(organisation: Organisation) -> None:
    """Serialises launches of one organisation, so quota checks cannot race."""
    locked = Quota.objects.select_for_update().filter(organisation=organisation)
    if locked.values_list("pk").first() is None:  # the organisation's first: make its row
        Quota.objects.get_or_create(organisation=organisation)
        locked.values_list("pk").get()


def _add_nodes(
    cluster: Cluster,
    pool: NodePool,
    count: int,
    plan: placement.Plan,
    offset: int,
    version: K3sVersion | None = None,
) -> list[Node]:
    """Create `count` nodes of `pool` on the hosts plan.hosts[offset:], with IPs and steps,
    running `version` (default: the cluster's)."""
    size = pool.size
    first_index = pool.next_index
    first_is_server = not Node.objects.filter(cluster=cluster).exists()
    nodes = [
        Node(
            cluster=cluster,
            pool=pool,
            name=f"{cluster.name}-{pool.name}-{first_index + i}",
            is_server=first_is_server and i == 0,
            hypervisor_id=plan.hosts[offset + i],
            claimed_vcpus=size.vcpus,
            claimed_memory_mib=size.memory_mib,
            k3s_version=version or cluster.k3s_version,
        )
        for i in range(count)
    ]
    for node in nodes:  # its uuid is made with the row object, before the insert
        node.token_digest = guest_seed.token_digest(guest_seed.node_token(node))
    nodes = Node.objects.bulk_create(nodes)
    NodeStep.objects.bulk_create(
        [NodeStep(node=node, step=step) for node in nodes for step in steps.NAMES]
    )
    addresses.allocate_all(nodes)
    NodePool.objects.filter(pk=pool.pk).update(next_index=first_index + count)
    pool.next_index = first_index + count
    return nodes


def create_cluster(actor: Actor, spec: ClusterRequest) -> Cluster:
    """Launch a cluster in the actor's organisation."""
    organisation = actor.organisation
    if organisation is None:
        raise Invalid("You belong to no organisation.")
    actor.require(Action.CHANGE, organisation)
    cluster_spec.validate(spec)
    if not BaseImage.objects.filter(version=spec.k3s_version, region=spec.region).exists():
        raise Invalid(
            {"k3s_version": f"{spec.k3s_version} has no base image in region {spec.region}."}
        )
    try:
        with transaction.atomic():
            _lock_quota(organisation)
            if Cluster.objects.filter(
                organisation=organisation,
                name=spec.name,
                status__in=CLUSTER_LIVE,
            ).exists():
                raise Invalid({"name": f"You already have a cluster named {spec.name}."})
            network, firewall = networking.resolve_for_cluster(
                actor, organisation, spec.region, spec.network, spec.firewall
            )
            quotas.check(organisation, quotas.of_nodes(spec.sizes, clusters=1))
            try:
                plan = placement.claim(spec.region, spec.sizes, version=spec.k3s_version)
            except placement.PlacementError as error:
                raise Invalid({"pools": str(error)}) from error
            server_ca, client_ca = (
                pki.make_ca(f"{spec.name}-server-ca"),
                pki.make_ca(f"{spec.name}-client-ca"),
            )
            cluster = Cluster.objects.create(
                organisation=organisation,
                name=spec.name,
                region=spec.region,
                k3s_version=spec.k3s_version,
                cni=spec.cni,
                network=network,
                firewall=firewall,
                created_by=actor.user,
                server_ca_cert=server_ca.cert_pem,
                server_ca_key=server_ca.key_pem,
                client_ca_cert=client_ca.cert_pem,
                client_ca_key=client_ca.key_pem,
                join_token=pki.join_token(),
                trace_parent=tracing.traceparent(),
            )
            offset, node_ids = 0, []
            for pool_spec in spec.pools:
                pool = NodePool.objects.create(
                    cluster=cluster,
                    name=pool_spec.name,
                    size=pool_spec.size,
                    count=pool_spec.count,
                    labels=pool_spec.labels,
                    taints=list(pool_spec.taints),
                )
                node_ids += [n.pk for n in _add_nodes(cluster, pool, pool_spec.count, plan, offset)]
                offset += pool_spec.count
            # No other transaction sees the new row, so none can write its events: the
            # first one needs no lock on it (events.record takes one).
            events.append(cluster, [events.Entry(f"Cluster requested: {plan.summary}.")])
            audit.record(
                "cluster.create",
                cluster,
                actor,
                organisation=organisation,
                placement=plan.summary,
            )
            enqueue.launch_cluster(cluster.pk)
    except IntegrityError as error:  # the unique live name, raced by a concurrent request
        raise Invalid({"name": f"You already have a cluster named {spec.name}."}) from error
    return cluster


def delete_cluster(actor: Actor, cluster: Cluster) -> None:
    actor.require(Action.CHANGE, cluster.organisation)
    with transaction.atomic():
        if not transition(cluster, CLUSTER_DELETABLE, C.DELETING, status_reason="Deleting."):
            return  # already deleting: a repeated DELETE is accepted and changes nothing
        live = Node.objects.filter(cluster=cluster).exclude(status__in=NODE_GONE)
        node_ids = pipeline.start_deleting(live)
        events.record(cluster, "Cluster deletion requested.")
        audit.record("cluster.delete", cluster, actor, organisation=cluster.organisation)
        if not node_ids:
            transaction.on_commit(lambda: _finish_empty_delete(cluster.pk), robust=True)
    enqueue.delete_nodes(node_ids)


@transaction.atomic
def _finish_empty_delete(cluster_id: int) -> None:
    cluster = Cluster.objects.get(pk=cluster_id)
    if transition(cluster, [C.DELETING], C.DELETED, deleted_at=timezone.now()):
        events.record(cluster, "Cluster deleted.", progress=100)
        notify.cluster_changed(cluster)


def scale_pool(actor: Actor, pool: NodePool, count: int) -> None:
    cluster = pool.cluster
    actor.require(Action.CHANGE, cluster.organisation)
    cluster_spec.check_pool_count(count)
    with transaction.atomic():
        _lock_quota(cluster.organisation)
        if cluster.status in CLUSTER_GONE:
            raise Invalid({"cluster": "The cluster is being deleted."})
        live = list(
            pool.nodes.filter(status__in=NODE_LIVE).exclude(status=N.DELETING).order_by("id")
        )
        NodePool.objects.filter(pk=pool.pk).update(count=count)
        audit.record(
            "pool.scale",
            pool,
            actor,
            organisation=cluster.organisation,
            before=len(live),
            after=count,
        )
        if count > len(live):
            grow_pool(pool, count - len(live), "count", f"Scaling {pool.name} up to {count}")
        elif count < len(live):
            newest = [n for n in reversed(live) if not n.is_server][: len(live) - count]
            if len(newest) < len(live) - count:
                raise Invalid({"count": "The server node cannot be removed."})
            events.record(
                cluster,
                f"Scaling {pool.name} down to {count}: draining "
                + ", ".join(n.name for n in newest)
                + ".",
            )
            enqueue.delete_nodes(pipeline.start_deleting(newest))


def grow_pool(
    pool: NodePool, added: int, field: str, why: str, version: K3sVersion | None = None
) -> list[Node]:
    """Place and launch `added` more nodes of the pool running `version` (default: the
    cluster's), inside the caller's transaction with the organisation's quota locked;
    Invalid on `field` when quota or room lack."""
    cluster = pool.cluster
    version = version or cluster.k3s_version
    sizes = [pool.size] * added
    quotas.check(cluster.organisation, quotas.of_nodes(sizes), field=field)
    existing = Counter(
        Node.objects.filter(cluster=cluster, status__in=NODE_LIVE).values_list(
            "hypervisor_id", flat=True
        )
    )
    try:
        plan = placement.claim(cluster.region, sizes, existing, version)
    except placement.PlacementError as error:
        raise Invalid({field: str(error)}) from error
    nodes = _add_nodes(cluster, pool, added, plan, 0, version)
    transition(cluster, CLUSTER_SETTLED, C.PROVISIONING)
    events.record(cluster, f"{why}: {plan.summary}.")
    enqueue.launch_nodes([n.pk for n in nodes])
    return nodes


def set_health_policy(actor: Actor, cluster: Cluster, policy: dict[str, object]) -> None:
    """`policy`: any of heal_enabled, heal_after_seconds, heal_max_parallel."""
    actor.require(Action.CHANGE, cluster.organisation)
    if not policy:
        return
    with transaction.atomic():
        before = {field: getattr(cluster, field) for field in policy}
        Cluster.objects.filter(pk=cluster.pk).update(**policy)
        audit.record(
            "cluster.health_policy",
            cluster,
            actor,
            organisation=cluster.organisation,
            before=before,
            after=policy,
        )


def replace_node(actor: Actor, node: Node, reason: str, version: K3sVersion | None = None) -> Node:
    """Surge: a new node in `node`'s pool (running `version`, default its own); once it
    runs, `node` is deleted (pipeline.node_ready), so the pool never has fewer nodes
    serving than it asks for."""
    cluster = node.cluster
    with transaction.atomic():
        _lock_quota(cluster.organisation)
        why = f"Replacing {node.name} ({reason})"
        [new] = grow_pool(node.pool, 1, "node", why, version or node.version)
        new.replaces = node
        new.save(update_fields=["replaces"])
        audit.record(
            "node.replace",
            node,
            actor,
            organisation=cluster.organisation,
            reason=reason,
            replacement=new.name,
        )
    return new


def retry_failed(actor: Actor, cluster: Cluster) -> list[str]:
    """Re-run failed nodes on fresh placements; returns their names."""
    actor.require(Action.CHANGE, cluster.organisation)
    with transaction.atomic():
        _lock_quota(cluster.organisation)
        failed = list(cluster.nodes.filter(status=N.FAILED).select_related("pool__size"))
        if not failed:
            raise Invalid({"cluster": "No failed nodes to retry."})
        existing = Counter(
            Node.objects.filter(cluster=cluster, status__in=NODE_ACTIVE).values_list(
                "hypervisor_id", flat=True
            )
        )
        hosts = []
        for node in failed:  # each on its own version's image (an upgrade's are newer)
            try:
                plan = placement.claim(cluster.region, [node.pool.size], existing, node.version)
            except placement.PlacementError as error:
                raise Invalid({"cluster": str(error)}) from error
            existing[plan.hosts[0]] += 1
            hosts.append(plan.hosts[0])
        for node, host_id in zip(failed, hosts, strict=True):
            # The failed node's resources were released; it starts over on its new host.
            transition(
                node,
                [N.FAILED],
                N.PENDING,
                hypervisor_id=host_id,
                error_code="",
                error_message="",
                claimed_vcpus=node.pool.size.vcpus,
                claimed_memory_mib=node.pool.size.memory_mib,
                progressed_at=timezone.now(),
            )
            NodeStep.objects.filter(node=node).update(
                started_at=None, finished_at=None, failed=False
            )
            addresses.allocate(node)
        transition(cluster, CLUSTER_SETTLED, C.PROVISIONING)
        names = [n.name for n in failed]
        events.record(cluster, f"Retrying {', '.join(names)}: {plan.summary}.")
        audit.record("cluster.retry", cluster, actor, organisation=cluster.organisation)
        ids = [n.pk for n in failed]
        enqueue.launch_nodes(ids)
    return names
