from cryptography.fernet import Fernet
from django.test import override_settings

from portal import secrets


def test_round_trip_and_no_plain_text() -> None:
    sealed = secrets.encrypt("-----BEGIN PRIVATE KEY-----abc")
    assert "PRIVATE KEY" not in sealed
    assert secrets.decrypt(sealed) == "-----BEGIN PRIVATE KEY-----abc"


def test_rotation_keeps_old_secrets_readable() -> None:
    old = Fernet.generate_key().decode()
    new = Fernet.generate_key().decode()
    secrets._fernet.cache_clear()
    try:
        with override_settings(FERNET_KEYS=[old]):
            sealed = secrets.encrypt("join-token")
            secrets._fernet.cache_clear()
        with override_settings(FERNET_KEYS=[new, old]):
            assert secrets.decrypt(sealed) == "join-token"
            secrets._fernet.cache_clear()
    finally:
        secrets._fernet.cache_clear()
