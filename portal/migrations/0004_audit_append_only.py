"""The audit log is append-only in the database itself where the engine allows (PostgreSQL):
a row may never be deleted or changed, except that deleting a user or an organisation
empties its reference (ON DELETE SET NULL, which Django performs as an UPDATE). TRUNCATE is
left to the owner of the database (tests flush with it)."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION portal_audit_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE'
     OR (to_jsonb(NEW) - 'actor_id' - 'organisation_id')
        IS DISTINCT FROM (to_jsonb(OLD) - 'actor_id' - 'organisation_id')
     OR (NEW.actor_id IS NOT NULL AND NEW.actor_id IS DISTINCT FROM OLD.actor_id)
     OR (NEW.organisation_id IS NOT NULL
         AND NEW.organisation_id IS DISTINCT FROM OLD.organisation_id)
  THEN
    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER portal_audit_append_only BEFORE UPDATE OR DELETE ON portal_auditentry
  FOR EACH ROW EXECUTE FUNCTION portal_audit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS portal_audit_append_only ON portal_auditentry;
DROP FUNCTION IF EXISTS portal_audit_append_only();
"""


def on_postgresql(sql: str):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("portal", "0003_cache_table")]

    operations = [migrations.RunPython(on_postgresql(CREATE), on_postgresql(DROP))]
