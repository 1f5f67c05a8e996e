"""Node.port: the node's address and MAC, a networking port owned by the node's uuid."""

import django.db.models.deletion
from django.db import migrations, models


def link_ports(apps, schema_editor):
    Node = apps.get_model("provisioning", "Node")
    Port = apps.get_model("networking", "Port")
    for port in Port.objects.all():
        Node.objects.filter(uuid=port.owner).update(port=port)


class Migration(migrations.Migration):
    dependencies = [
        ("provisioning", "0003_reconciliation"),
        ("networking", "0004_port"),
    ]

    operations = [
        migrations.AddField(
            model_name="node",
            name="port",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="networking.port",
            ),
        ),
        migrations.RunPython(link_ports, migrations.RunPython.noop),
    ]
