"""Create the embedded mode's secrets under DATA_DIR (mode 0600), once.

Settings only read DATA_DIR/secret_key and DATA_DIR/fernet_key, so importing them writes
nothing; `make run` and `serve` run this first. A secret given in the environment
(SECRET_KEY, FERNET_KEYS) wins and no file is written for it.
"""

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.secrets import generated_secret

# File under DATA_DIR, the variable that replaces it, and the kind of secret.
SECRETS = [("secret_key", "SECRET_KEY", "django"), ("fernet_key", "FERNET_KEYS", "fernet")]


class Command(BaseCommand):
    help = "Write DATA_DIR/secret_key and DATA_DIR/fernet_key when neither they nor env exist."
    # Runs before anything else on a fresh DATA_DIR, when the checks would lack the keys.
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        for filename, variable, kind in SECRETS:
            path = settings.DATA_DIR / filename
            if os.environ.get(variable) or path.exists():
                continue
            generated_secret(path, kind)
            self.stdout.write(f"Created {path} (mode 0600)")
