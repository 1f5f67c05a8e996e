"""The database cache's table (embedded mode's CACHES), wherever migrations run.

createcachetable is idempotent and does nothing when the cache is Redis; a deployment that
moves from Redis to the database cache later runs `manage.py createcachetable` once.
"""

from django.core.management import call_command
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def create_cache_table(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("portal", "0002_audit_via")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
