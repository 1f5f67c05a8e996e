"""Ports (address + MAC, held by an opaque owner) replace node-bound IP allocations.

Existing allocations become ports owned by their node's uuid, with the MAC the node had
(the last three bytes of its uuid); `provisioning.0004_node_port` links nodes to them and
`0005` drops the old table.
"""

import hashlib
import uuid

import django.db.models.deletion
from django.db import migrations, models


def _mac(owner: str, taken: set[str]) -> str:
    # As networking.ipam.macs_for at the time of writing (frozen here, as migrations are).
    tails = [uuid.UUID(owner).bytes[-3:]]
    tails += [hashlib.sha256(f"{owner}/{n}".encode()).digest()[:3] for n in range(1, 1000)]
    for tail in tails:
        mac = "52:54:00:" + ":".join(f"{b:02x}" for b in tail)
        if mac not in taken:
            return mac
    raise RuntimeError(f"no free MAC for {owner}")


def allocations_to_ports(apps, schema_editor):
    IpAllocation = apps.get_model("networking", "IpAllocation")
    Port = apps.get_model("networking", "Port")
    taken: dict[int, set[str]] = {}
    for allocation in IpAllocation.objects.select_related("node").order_by("id"):
        owner = str(allocation.node.uuid)
        macs = taken.setdefault(allocation.network_id, set())
        mac = _mac(owner, macs)
        macs.add(mac)
        Port.objects.create(
            network_id=allocation.network_id, owner=owner, address=allocation.address, mac=mac
        )


class Migration(migrations.Migration):
    dependencies = [
        ("networking", "0003_retired_networks_and_firewall_rollouts"),
        ("provisioning", "0003_reconciliation"),
    ]

    operations = [
        migrations.CreateModel(
            name="Port",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("owner", models.CharField(max_length=64)),
                ("address", models.GenericIPAddressField(protocol="IPv4")),
                ("mac", models.CharField(max_length=17)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("network", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="ports", to="networking.network")),
            ],
            options={"ordering": ["network", "id"]},
        ),
        migrations.RemoveConstraint(model_name="ipallocation", name="one_holder_per_address"),
        migrations.AddConstraint(
            model_name="port",
            constraint=models.UniqueConstraint(fields=("network", "address"), name="one_holder_per_address"),
        ),
        migrations.AddConstraint(
            model_name="port",
            constraint=models.UniqueConstraint(fields=("network", "mac"), name="one_port_per_mac"),
        ),
        migrations.AddConstraint(
            model_name="port",
            constraint=models.UniqueConstraint(fields=("network", "owner"), name="one_port_per_owner"),
        ),
        migrations.RunPython(allocations_to_ports, migrations.RunPython.noop),
    ]
