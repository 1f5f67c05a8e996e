"""Business operations on tenant networks and firewalls; views and the launch call these."""

import re
import uuid
from datetime import datetime

from celery import current_app
from django.db import IntegrityError, transaction
from django.db.models import Manager
from django.utils import timezone

from networking import ipam, rules, segments
from networking.models import Firewall, Network, Region
from observability import events
from portal import audit
from portal.actor import Action, Actor
from portal.errors import Conflict, Invalid
from portal.models import Organisation, Quota

DEFAULT_CIDR = "10.0.0.0/24"
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# A cluster's status once it is gone (provisioning's ClusterStatus.DELETED; networking
# reads clusters through the reverse relations and does not import provisioning).
CLUSTER_DELETED = "deleted"
# The worker's task, named rather than imported (it lives in provisioning).
ROLLOUT_TASK = "networking.rollout_firewall"
# Re-applies a network on every host with its nodes (provisioning's worker runs it).
NETWORK_SYNC_TASK = "networking.sync_network"


class InUse(Conflict):
    """The object is still used by live clusters (409, the clusters named in the answer)."""

    code = "in_use"

    def __init__(self, message: str, clusters: list[str]) -> None:
        super().__init__(message, clusters=clusters)
        self.clusters = clusters


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise Invalid(
            {"name": "Use 1-63 lowercase letters, digits and hyphens, not starting or ending "
             "with a hyphen."}
        )  # fmt: skip
    return name


def _parse_id(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as err:
        raise Invalid({field: f"{value!r} is not an id."}) from err


def live_clusters(clusters: Manager) -> list[str]:
    """Names of the clusters behind a reverse relation (`network.clusters`) not yet gone."""
    return sorted(clusters.exclude(status=CLUSTER_DELETED).values_list("name", flat=True))


# --- Networks -------------------------------------------------------------------------------


def create_network(
    actor: Actor,
    organisation: Organisation,
    region: Region,
    name: str,
    cidr: str,
    *,
    is_default: bool = False,
    egress: bool = False,
) -> Network:
    """Validate, check the quota, take a segment, add the default firewall, audit; atomic."""
    actor.require(Action.CHANGE, organisation)
    name = check_name(name)
    net = ipam.parse_cidr(cidr)
    try:
        with transaction.atomic():
            # Lock order everywhere: organisation, then region.
            Organisation.objects.select_for_update().get(pk=organisation.pk)
            limit = Quota.objects.get_or_create(organisation=organisation)[0].networks
            count = Network.objects.live().filter(organisation=organisation).count()
            if count >= limit:
                raise Invalid(
                    {"quota": f"Your organisation may have {limit} networks; it has {count}."}
                )
            if Network.objects.filter(organisation=organisation, name=name).exists():
                raise Invalid({"name": f"You already have a network named {name}."})
            segments.lock_region(region)
            network = Network.objects.create(
                organisation=organisation,
                region_id=region.pk,
                name=name,
                cidr=str(net),
                gateway=ipam.gateway_of(net),
                segment_id=segments.allocate(region),
                is_default=is_default,
                egress=egress,
            )
            firewall = Firewall.objects.create(
                organisation=organisation,
                network=network,
                name=_free_firewall_name(organisation, f"{name[:52]}-fw"),
                rules=rules.default_rules(str(net)),
                is_default=True,
            )
            audit.record(
                "network.create",
                network,
                actor,
                organisation=organisation,
                cidr=network.cidr,
                region=region.slug,
                segment_id=network.segment_id,
                default_firewall=str(firewall.uuid),
            )
    except IntegrityError as err:  # a concurrent request took the name first
        raise Invalid({"name": f"You already have a network named {name}."}) from err
    return network


def set_egress(actor: Actor, network: Network, egress: bool) -> Network:
    """Turn the network's outbound NAT on or off; every host with its nodes follows."""
    actor.require(Action.CHANGE, network.organisation)
    with transaction.atomic():
        Network.objects.filter(pk=network.pk).update(egress=egress)
        network.egress = egress
        audit.record(
            "network.update", network, actor, organisation=network.organisation, egress=egress
        )
        sync = current_app.signature(NETWORK_SYNC_TASK, args=(network.pk,))
        transaction.on_commit(sync.delay)
    return network


def _free_firewall_name(organisation: Organisation, wanted: str) -> str:
    """`wanted`, or with a number appended when the organisation already uses it."""
    taken = set(
        Firewall.objects.filter(organisation=organisation, name__startswith=wanted).values_list(
            "name", flat=True
        )
    )
    name, number = wanted, 1
    while name in taken:
        number += 1
        name = f"{wanted}-{number}"
    return name


def default_network(actor: Actor, organisation: Organisation, region: Region) -> Network:
    """The organisation's default network in the region, created on first use (by the
    actor launching a cluster there, so they need the change role as for any network)."""
    existing = (
        Network.objects.live().filter(organisation=organisation, region=region, is_default=True)
    ).first()
    if existing is not None:
        return existing
    taken = Network.objects.filter(organisation=organisation, name="default").exists()
    return create_network(
        actor,
        organisation,
        region,
        f"default-{region.slug}"[:63] if taken else "default",
        DEFAULT_CIDR,
        is_default=True,
    )


def resolve_for_cluster(
    actor: Actor,
    organisation: Organisation,
    region: Region,
    network_uuid: str | None,
    firewall_uuid: str | None,
) -> tuple[Network, Firewall]:
    """The network and firewall a new cluster joins; Invalid naming the bad field."""
    if network_uuid:
        network = (
            Network.objects.live()
            .filter(organisation=organisation, uuid=_parse_id(network_uuid, "network"))
            .first()
        )
        if network is None:
            raise Invalid({"network": "No such network in your organisation."})
        if network.region_id != region.pk:
            raise Invalid(
                {"network": f"Network {network.name} is in another region than {region.slug}."}
            )
    else:
        network = default_network(actor, organisation, region)
    if firewall_uuid:
        firewall = (
            Firewall.objects.live()
            .filter(organisation=organisation, uuid=_parse_id(firewall_uuid, "firewall"))
            .first()
        )
        if firewall is None:
            raise Invalid({"firewall": "No such firewall in your organisation."})
        if firewall.network_id != network.pk:
            raise Invalid(
                {"firewall": f"Firewall {firewall.name} belongs to another network than "
                 f"{network.name}."}
            )  # fmt: skip
    else:
        firewall = Firewall.objects.live().get(network=network, is_default=True)
    return network, firewall


def delete_network(actor: Actor, network: Network) -> None:
    """Delete it, or InUse naming the live clusters on it."""
    actor.require(Action.CHANGE, network.organisation)
    with transaction.atomic():
        Network.objects.select_for_update().get(pk=network.pk)
        names = live_clusters(network.clusters)
        if names:
            raise InUse(f"Network {network.name} is used by: {', '.join(names)}.", names)
        audit.record(
            "network.delete",
            network,
            actor,
            organisation=network.organisation,
            cidr=network.cidr,
            segment_id=network.segment_id,
        )
        if network.clusters.exists():
            now = timezone.now()
            for firewall in Firewall.objects.live().filter(network=network):
                _retire(firewall, now)
            _retire(network, now, segment_id=segments.parked(network))
        else:
            network.delete()  # its firewalls go with it


def _retire(obj: Network | Firewall, now: datetime, **fields: object) -> None:
    """Keep a row deleted clusters still point at, freeing its name (and segment)."""
    tombstone = f"{obj.name[:54]}~{obj.uuid.hex[:8]}"  # "~" is not allowed in names
    type(obj).objects.filter(pk=obj.pk).update(name=tombstone, deleted_at=now, **fields)


# --- Firewalls ------------------------------------------------------------------------------


def create_firewall(
    actor: Actor, organisation: Organisation, network: Network, name: str, rule_list: object
) -> Firewall:
    actor.require(Action.CHANGE, organisation)
    name = check_name(name)
    if network.organisation_id != organisation.pk or network.deleted_at is not None:
        raise Invalid({"network": "No such network in your organisation."})
    clean = rules.validate(rule_list)
    try:
        with transaction.atomic():
            if Firewall.objects.filter(organisation=organisation, name=name).exists():
                raise Invalid({"name": f"You already have a firewall named {name}."})
            firewall = Firewall.objects.create(
                organisation=organisation, network=network, name=name, rules=clean
            )
            audit.record(
                "firewall.create",
                firewall,
                actor,
                organisation=organisation,
                network=str(network.uuid),
                rules=clean,
            )
    except IntegrityError as err:
        raise Invalid({"name": f"You already have a firewall named {name}."}) from err
    return firewall


def update_firewall(
    actor: Actor, firewall: Firewall, *, name: str | None = None, rule_list: object = None
) -> Firewall:
    """Rename and/or replace the rules; a rule change is a new revision rolled out to hosts."""
    actor.require(Action.CHANGE, firewall.organisation)
    changes: dict[str, object] = {}
    if name is not None and name != firewall.name:
        changes["name"] = check_name(name)
    if rule_list is not None:
        clean = rules.validate(rule_list)
        if clean != firewall.rules:
            changes["rules"] = clean
    if not changes:
        return firewall
    try:
        with transaction.atomic():
            locked = Firewall.objects.select_for_update().get(pk=firewall.pk)
            for field, value in changes.items():
                setattr(locked, field, value)
            if "rules" in changes:
                locked.revision += 1
            locked.save()
            audit.record(
                "firewall.update",
                locked,
                actor,
                organisation=locked.organisation,
                revision=locked.revision,
                changes=changes,
            )
            if "rules" in changes:
                _announce_rules(locked)
    except IntegrityError as err:
        raise Invalid({"name": f"You already have a firewall named {name}."}) from err
    return locked


def _announce_rules(firewall: Firewall) -> None:
    """An event for each live cluster behind the firewall, and the rollout after commit."""
    for cluster in firewall.clusters.exclude(status=CLUSTER_DELETED):
        events.record(
            cluster, f"firewall {firewall.name} rules changed (revision {firewall.revision})"
        )
    rollout = current_app.signature(ROLLOUT_TASK, args=(firewall.pk,))
    transaction.on_commit(rollout.delay)


def delete_firewall(actor: Actor, firewall: Firewall) -> None:
    actor.require(Action.CHANGE, firewall.organisation)
    if firewall.is_default:
        raise Invalid({"firewall": "A network's default firewall goes only with its network."})
    with transaction.atomic():
        Firewall.objects.select_for_update().get(pk=firewall.pk)
        names = live_clusters(firewall.clusters)
        if names:
            raise InUse(f"Firewall {firewall.name} is used by: {', '.join(names)}.", names)
        audit.record("firewall.delete", firewall, actor, organisation=firewall.organisation)
        if firewall.clusters.exists():
            _retire(firewall, timezone.now())
        else:
            firewall.delete()
