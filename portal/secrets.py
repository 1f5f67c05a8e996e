"""Secrets at rest (CA keys, join tokens, hypervisor credentials), Fernet-encrypted.

The first key of FERNET_KEYS encrypts; all of them decrypt, so keys rotate by prepending.
Models hold these in `portal.fields.EncryptedTextField`, which calls encrypt/decrypt here.
"""

import os
import secrets
from functools import cache
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MISSING_KEYS = (
    "FERNET_KEYS is not set and DATA_DIR has no fernet_key: "
    "set FERNET_KEYS, or run `manage.py init_secrets` (embedded mode)"
)


@cache
def _fernet() -> MultiFernet:
    if not settings.FERNET_KEYS:
        raise ImproperlyConfigured(MISSING_KEYS)
    return MultiFernet([Fernet(key.encode()) for key in settings.FERNET_KEYS])


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()


def generated_secret(path: Path, kind: str) -> str:
    """The secret kept in `path`, creating it (mode 0600) if absent.

    Several processes may start at once: exactly one creates the file, the others read it.
    """
    if path.exists():
        return path.read_text().strip()
    if kind == "fernet":
        value = Fernet.generate_key().decode()
    else:  # a short one for a person to type, a long one for machines
        value = secrets.token_urlsafe(12 if kind == "password" else 50)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process started at the same moment and won
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value
