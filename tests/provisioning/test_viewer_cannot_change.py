"""Every mutating service refuses a viewer, whatever view forgot to check first."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import User

from portal import organisations
from portal.actor import Actor
from portal.errors import Forbidden
from portal.models import AuditEntry, Invitation, Membership, Organisation, Role
from provisioning import inventory, kubeconfigs, services
from provisioning.cluster_spec import ClusterRequest, PoolRequest
from provisioning.models import Cluster, Hypervisor, IssuedCredential, K3sVersion, NodeSize, Region
from provisioning.states import ClusterStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]


def request_for(region: Region, name: str = "web") -> ClusterRequest:
    return ClusterRequest(
        name=name,
        region=region,
        k3s_version=K3sVersion.objects.get(is_default=True),
        pools=(PoolRequest("workers", NodeSize.objects.get(slug="small"), 2),),
    )


@pytest.fixture
def running(demo_cloud: Region, alice: User, acme: Organisation) -> Cluster:
    cluster = services.create_cluster(Actor(user=alice, organisation=acme), request_for(demo_cloud))
    cluster.refresh_from_db()
    assert cluster.status == ClusterStatus.RUNNING
    return cluster


def test_each_cluster_service_refuses_a_viewer(
    running: Cluster, demo_cloud: Region, charlie: User, acme: Organisation
) -> None:
    viewer = Actor(user=charlie, organisation=acme)
    pool = running.pools.get()
    calls: list[Callable[[], object]] = [
        lambda: services.create_cluster(viewer, request_for(demo_cloud, "other")),
        lambda: services.delete_cluster(viewer, running),
        lambda: services.scale_pool(viewer, pool, 3),
        lambda: services.retry_failed(viewer, running),
        lambda: kubeconfigs.issue(viewer, running, "admin", timedelta(hours=1)),
    ]
    audit_before = AuditEntry.objects.count()
    for call in calls:
        with pytest.raises(Forbidden):
            call()
    running.refresh_from_db()
    assert running.status == ClusterStatus.RUNNING
    assert running.nodes.count() == 2
    assert Cluster.objects.count() == 1
    assert not IssuedCredential.objects.exists()
    assert AuditEntry.objects.count() == audit_before
    # What a viewer may do, it may: read-only credentials.
    assert "client-certificate-data" in kubeconfigs.issue(viewer, running, "viewer")


def test_a_token_bound_to_another_organisation_cannot_change_a_cluster(
    running: Cluster, alice: User, bobco: Organisation
) -> None:
    Membership.objects.create(user=alice, organisation=bobco, role=Role.OWNER)
    with pytest.raises(Forbidden):
        services.delete_cluster(Actor(user=alice, organisation=bobco, bound=True), running)
    running.refresh_from_db()
    assert running.status == ClusterStatus.RUNNING


def test_cordon_needs_staff(demo_cloud: Region, alice: User, staff: User) -> None:
    host = Hypervisor.objects.order_by("name").first()
    assert host is not None
    with pytest.raises(Forbidden):
        inventory.cordon(Actor(user=alice), host)
    host.refresh_from_db()
    assert host.state == "active"
    assert inventory.cordon(Actor(user=staff), host)


def test_membership_services_need_the_owner(alice: User, charlie: User, acme: Organisation) -> None:
    member = User.objects.create_user("dana")
    membership = Membership.objects.create(user=member, organisation=acme, role=Role.MEMBER)
    for actor in (Actor(user=charlie), Actor(user=member)):
        with pytest.raises(Forbidden):
            organisations.change_role(actor, membership, Role.OWNER)
        with pytest.raises(Forbidden):
            organisations.remove_member(actor, membership)
        with pytest.raises(Forbidden):
            organisations.invite(actor, acme, "x@example.com", Role.VIEWER, lambda raw: raw)
    membership.refresh_from_db()
    assert membership.role == Role.MEMBER
    assert not Invitation.objects.exists()
    organisations.change_role(Actor(user=alice), membership, Role.ADMIN)
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN
