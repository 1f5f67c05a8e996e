"""Kubeconfigs: a client certificate from the cluster's CA, recorded and audited.

An admin kubeconfig changes the cluster (member role or above); a viewer one only reads.
"""

from datetime import timedelta

from django.db import transaction

from portal import audit
from portal.actor import Action, Actor
from portal.errors import Forbidden, Invalid
from provisioning import api_forwards, pki
from provisioning.models import Cluster, IssuedCredential

DEFAULT_TTL = timedelta(hours=8)
MAX_TTL = timedelta(days=7)
ROLES = {"admin": Action.CHANGE, "viewer": Action.VIEW}


def issue(actor: Actor, cluster: Cluster, role: str, ttl: timedelta = DEFAULT_TTL) -> str:
    if role not in ROLES:
        raise Invalid({"role": f"Choose one of {', '.join(ROLES)}."})
    actor.require(ROLES[role], cluster.organisation)
    user = actor.user
    if user is None:
        raise Forbidden("A kubeconfig is issued to a user.")
    if ttl > MAX_TTL or ttl <= timedelta(0):
        raise Invalid({"ttl": "Lifetime must be between 1 second and 7 days."})
    server = cluster.nodes.filter(is_server=True).select_related("port", "hypervisor").first()
    endpoint = api_forwards.endpoint(server) if server else None
    if endpoint is None:
        raise Invalid({"cluster": "The cluster has no server address yet."})
    ca = pki.CertificateAuthority(cluster.client_ca_cert, cluster.client_ca_key)
    credential = pki.issue_client(ca, user.get_username(), role, ttl)
    with transaction.atomic():
        issued = IssuedCredential.objects.create(
            cluster=cluster,
            user=user,
            username=user.get_username(),
            role=role,
            serial=credential.serial,
            expires_at=credential.expires_at,
        )
        audit.record(
            "kubeconfig.issue",
            issued,
            actor,
            organisation=cluster.organisation,
            role=role,
            serial=credential.serial,
        )
    return pki.kubeconfig(
        cluster.name,
        endpoint,
        cluster.server_ca_cert,
        user.get_username(),
        credential,
    )
