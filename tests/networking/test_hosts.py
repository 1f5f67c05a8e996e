"""The worker side on libvirt's test driver: networks defined with the first node on a host
and removed with the last, static leases, and the firewall honestly "not enforced"."""

import pytest
from pytest_django import DjangoAssertNumQueries

from networking import services
from networking.models import FirewallRollout, Network
from observability.models import Event
from portal.models import Organisation
from provisioning import addresses, host_network
from provisioning.drivers import get_driver
from provisioning.drivers import xml as lvxml
from provisioning.drivers.base import NetworkSpec
from provisioning.models import Cluster, Hypervisor, Node
from provisioning.states import NodeStatus
from provisioning.tasks import network as network_tasks
from tests.networking.conftest import MakeCluster, default_firewall, owner


def defined(host: Hypervisor, network: Network) -> NetworkSpec | None:
    conn = get_driver(host.uri)._connection()  # type: ignore[attr-defined]
    if network.libvirt_name not in conn.listNetworks() + conn.listDefinedNetworks():
        return None
    xml = conn.networkLookupByName(network.libvirt_name).XMLDesc(0)
    return lvxml.network_spec_from_xml(xml)


def leave(node: Node) -> None:
    """What the pipeline's release does around detach: node deleting, address back."""
    Node.objects.filter(pk=node.pk).update(status=NodeStatus.DELETING)
    node.refresh_from_db()
    addresses.release(node)
    host_network.detach(node, get_driver(node.hypervisor.uri))  # type: ignore[union-attr]


def test_attach_defines_the_network_with_a_lease_per_node(
    acme_net: Network, make_cluster: MakeCluster, hypervisors: list[Hypervisor]
) -> None:
    hv1, hv2 = hypervisors
    first, second, elsewhere = make_cluster(acme_net, [hv1, hv1, hv2]).nodes.order_by("id")
    assert defined(hv1, acme_net) is None
    nic = host_network.attach(first, get_driver(hv1.uri))
    assert (nic.network, nic.mac, nic.ip) == (
        acme_net.libvirt_name,
        addresses.mac_of(first),
        "10.20.0.2",
    )
    assert nic.nwfilter is None  # the test driver cannot enforce it, so nothing refers to it
    spec = defined(hv1, acme_net)
    assert spec is not None
    assert (spec.bridge, spec.segment_id, spec.gateway, spec.prefix) == (
        acme_net.bridge,
        acme_net.segment_id,
        "10.20.0.1",
        24,
    )
    # Both live nodes on hv-1 have their static lease; the one on hv-2 does not belong here.
    assert [(h.mac, h.ip, h.name) for h in spec.dhcp_hosts] == [
        (addresses.mac_of(first), "10.20.0.2", first.domain_name),
        (addresses.mac_of(second), "10.20.0.3", second.domain_name),
    ]
    host_network.attach(second, get_driver(hv1.uri))
    assert defined(hv1, acme_net) == spec  # idempotent: the same network again
    assert defined(hv2, acme_net) is None
    host_network.attach(elsewhere, get_driver(hv2.uri))
    assert [h.ip for h in defined(hv2, acme_net).dhcp_hosts] == ["10.20.0.4"]  # type: ignore[union-attr]


def test_detach_drops_the_lease_then_the_network_idempotently(
    acme_net: Network, make_cluster: MakeCluster, hypervisors: list[Hypervisor]
) -> None:
    hv1 = hypervisors[0]
    first, second = make_cluster(acme_net, [hv1, hv1]).nodes.order_by("id")
    for node in (first, second):
        host_network.attach(node, get_driver(hv1.uri))
    leave(first)
    spec = defined(hv1, acme_net)
    assert spec is not None and [h.name for h in spec.dhcp_hosts] == [second.domain_name]
    leave(second)
    assert defined(hv1, acme_net) is None
    host_network.detach(second, get_driver(hv1.uri))  # twice: still gone, no error
    assert defined(hv1, acme_net) is None
    assert not FirewallRollout.objects.exists()  # the firewall left the host with its nodes


def test_another_network_on_the_host_keeps_its_own(
    acme_net: Network,
    acme: Organisation,
    make_cluster: MakeCluster,
    hypervisors: list[Hypervisor],
) -> None:
    hv1 = hypervisors[0]
    other = services.create_network(owner(acme), acme, acme_net.region, "db", "10.30.0.0/24")
    a = make_cluster(acme_net, [hv1]).nodes.get()
    b = make_cluster(other, [hv1]).nodes.get()
    host_network.attach(a, get_driver(hv1.uri))
    host_network.attach(b, get_driver(hv1.uri))
    leave(a)
    assert defined(hv1, acme_net) is None
    assert defined(hv1, other) is not None


def test_attach_records_that_the_firewall_is_not_enforced(
    acme_net: Network, make_cluster: MakeCluster, hypervisors: list[Hypervisor]
) -> None:
    node = make_cluster(acme_net, hypervisors[:1]).nodes.get()
    host_network.attach(node, get_driver(hypervisors[0].uri))
    rollout = FirewallRollout.objects.get()
    assert (rollout.firewall, rollout.hypervisor, rollout.enforced) == (
        default_firewall(acme_net),
        hypervisors[0],
        False,
    )
    assert rollout.reason == "test driver has no nwfilter API"


def test_rule_change_rolls_out_with_events(
    acme_net: Network,
    make_cluster: MakeCluster,
    hypervisors: list[Hypervisor],
    django_capture_on_commit_callbacks,
) -> None:
    hv1, hv2 = hypervisors
    firewall = default_firewall(acme_net)
    behind = make_cluster(acme_net, [hv1, hv2], name="web")
    gone = make_cluster(acme_net, [hv1], name="old")
    Cluster.objects.filter(pk=gone.pk).update(status="deleted")
    Node.objects.filter(cluster=gone).update(status=NodeStatus.DELETED)
    new_rules = [*firewall.rules, {"direction": "ingress", "protocol": "tcp", "ports": "443",
                                   "cidr": "0.0.0.0/0"}]  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.update_firewall(owner(firewall.organisation), firewall, rule_list=new_rules)
    assert callbacks  # the rollout waited for the commit
    messages = list(Event.objects.filter(cluster=behind).values_list("message", flat=True))
    assert messages == [
        "firewall web-fw rules changed (revision 2)",
        "firewall web-fw revision 2 not enforced on hv-1 (test driver has no nwfilter API)",
        "firewall web-fw revision 2 not enforced on hv-2 (test driver has no nwfilter API)",
    ]
    assert not Event.objects.filter(cluster=gone).exists()
    assert sorted(
        FirewallRollout.objects.filter(firewall=firewall).values_list(
            "hypervisor__name", "revision", "enforced"
        )
    ) == [("hv-1", 2, False), ("hv-2", 2, False)]
    # A redelivered rollout finds every host at this revision and repeats nothing.
    network_tasks.rollout_firewall(firewall.pk)
    assert Event.objects.filter(cluster=behind).count() == 3


def test_unchanged_rules_are_no_new_revision(acme_net: Network) -> None:
    firewall = default_firewall(acme_net)
    services.update_firewall(owner(firewall.organisation), firewall, rule_list=list(firewall.rules))
    firewall.refresh_from_db()
    assert firewall.revision == 1


@pytest.mark.parametrize("uri", ["qemu:///system"])
def test_not_enforced_reason_only_blames_the_test_driver(uri: str) -> None:
    class Real:
        pass

    real = Real()
    real.uri = uri  # type: ignore[attr-defined]
    assert "test driver" not in host_network.not_enforced_reason(real)  # type: ignore[arg-type]


def test_a_node_joining_its_network_on_a_host_costs_few_queries(
    acme_net: Network,
    make_cluster: MakeCluster,
    hypervisors: list[Hypervisor],
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    """Every node of a launch attaches: once the host has the network and the firewall,
    the lock, the nodes there, the peers, the firewall and its rollout (and the savepoint
    the lock's block takes inside the test's transaction)."""
    hv1 = hypervisors[0]
    first, second = make_cluster(acme_net, [hv1, hv1]).nodes.order_by("id")
    host_network.attach(first, get_driver(hv1.uri))
    second = Node.objects.select_related("hypervisor", "port", "cluster__network").get(pk=second.pk)
    with django_assert_num_queries(7) as seen:
        host_network.attach(second, get_driver(hv1.uri))
    # The host's other nodes come without their clusters' CA keys and join tokens: each
    # would be decrypted, for every node there.
    assert not any("_encrypted" in q["sql"] for q in seen.captured_queries)
    assert [h.name for h in defined(hv1, acme_net).dhcp_hosts] == [  # type: ignore[union-attr]
        first.domain_name,
        second.domain_name,
    ]
    assert (
        FirewallRollout.objects.get(hypervisor=hv1).revision == default_firewall(acme_net).revision
    )
