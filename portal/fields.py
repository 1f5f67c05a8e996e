"""Model fields for secrets at rest: plaintext in Python, Fernet tokens in the database.

Encryption is not deterministic (each save writes a fresh token), so Django's change
detection works on the decrypted values, and a non-empty value cannot be looked up with
filter(); "" stays "" so `blank=True` and `exclude(field="")` keep their meaning.
"""

from typing import Any

from cryptography.fernet import InvalidToken
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.expressions import Expression

from portal import secrets


class EncryptedTextField(models.TextField):
    description = "Text encrypted at rest with portal.secrets (FERNET_KEYS)"

    def get_prep_value(self, value: Any) -> Any:
        # Not TextField's: it runs to_python, which would decrypt a value that happens to
        # be a token. What is saved is always the plaintext the model holds.
        value = models.Field.get_prep_value(self, value)
        return secrets.encrypt(str(value)) if value else value

    def from_db_value(
        self, value: str | None, expression: Expression, connection: BaseDatabaseWrapper
    ) -> str | None:
        return secrets.decrypt(value) if value else value

    def to_python(self, value: Any) -> Any:
        # Forms and assignments hand over plaintext; fixtures (value_to_string) a token.
        value = super().to_python(value)
        if not value:
            return value
        try:
            return secrets.decrypt(value)
        except InvalidToken:
            return value

    def value_to_string(self, obj: models.Model) -> str:
        # dumpdata writes the token, never the plaintext.
        value = self.value_from_object(obj)
        return secrets.encrypt(str(value)) if value else ""
