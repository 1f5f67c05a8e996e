"""What a model field holds in the database, read with raw SQL past the field's decryption."""

from django.db import connection
from django.db.models import Field, Model


def stored(obj: Model, name: str) -> str:
    field = obj._meta.get_field(name)
    assert isinstance(field, Field) and field.column
    column = field.column
    table = connection.ops.quote_name(obj._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(column)} FROM {table} WHERE id = %s",  # noqa: S608
            [obj.pk],
        )
        return str(cursor.fetchone()[0])
