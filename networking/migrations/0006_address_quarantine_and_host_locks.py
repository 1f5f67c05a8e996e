"""Address quarantine (a freed address waits out its DHCP lease) and per-host network locks."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("networking", "0005_delete_ipallocation"),
        ("provisioning", "0006_real_hosts"),
    ]

    operations = [
        migrations.CreateModel(
            name="HostNetworkLock",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "hypervisor",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="network_locks",
                        to="provisioning.hypervisor",
                    ),
                ),
                (
                    "network",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="host_locks",
                        to="networking.network",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("network", "hypervisor"), name="one_lock_per_host_network"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="QuarantinedAddress",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("address", models.GenericIPAddressField(protocol="IPv4")),
                ("mac", models.CharField(max_length=17)),
                ("released_at", models.DateTimeField()),
                (
                    "network",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="quarantined",
                        to="networking.network",
                    ),
                ),
            ],
            options={
                "ordering": ["network", "released_at"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("network", "address"), name="one_quarantine_per_address"
                    )
                ],
            },
        ),
    ]
