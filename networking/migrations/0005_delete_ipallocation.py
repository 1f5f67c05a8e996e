from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("networking", "0004_port"),
        ("provisioning", "0004_node_port"),
    ]

    operations = [
        migrations.DeleteModel(name="IpAllocation"),
    ]
