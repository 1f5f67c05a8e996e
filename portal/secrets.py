"""Secrets at rest (CA keys, join tokens, hypervisor credentials), Fernet-encrypted.

The first key of FERNET_KEYS encrypts; all of them decrypt, so keys rotate by prepending.
"""

from functools import cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


@cache
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in settings.FERNET_KEYS])


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()
