"""Secrets at rest: Fernet tokens in the database, plaintext only in Python, keys rotate."""

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers import serialize
from django.test import override_settings

from portal import secrets
from provisioning.models import Hypervisor, Region
from tests.portal.at_rest import stored
from tests.provisioning import inventory_fixtures
from tests.provisioning.inventory_fixtures import MakeHost

# Fixtures, used by name.
region = inventory_fixtures.region
make_host = inventory_fixtures.make_host

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-material\n"


@pytest.fixture
def fresh_keys() -> Iterator[None]:
    # _fernet() is cached per process: forget it around tests that change FERNET_KEYS.
    secrets._fernet.cache_clear()
    yield
    secrets._fernet.cache_clear()


def test_round_trip_and_no_plain_text() -> None:
    sealed = secrets.encrypt("-----BEGIN PRIVATE KEY-----abc")
    assert "PRIVATE KEY" not in sealed
    assert secrets.decrypt(sealed) == "-----BEGIN PRIVATE KEY-----abc"


def test_no_keys_is_a_one_line_error_naming_the_fix(fresh_keys: None) -> None:
    with override_settings(FERNET_KEYS=[]), pytest.raises(ImproperlyConfigured) as raised:
        secrets.encrypt("x")
    assert "init_secrets" in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.django_db
def test_field_stores_a_token_and_reads_plaintext(make_host: MakeHost) -> None:
    host = make_host("hv-1", credentials=KEY)

    at_rest = stored(host, "credentials")
    assert "secret-material" not in at_rest
    assert secrets.decrypt(at_rest) == KEY
    assert Hypervisor.objects.get(pk=host.pk).credentials == KEY
    assert Hypervisor.objects.values_list("credentials", flat=True).get(pk=host.pk) == KEY
    # dumpdata never writes the plaintext either.
    assert "secret-material" not in serialize("json", [host])


@pytest.mark.django_db
def test_empty_stays_empty(make_host: MakeHost) -> None:
    host = make_host("hv-1")
    assert stored(host, "credentials") == ""
    assert Hypervisor.objects.filter(credentials="").get() == host


@pytest.mark.django_db
def test_unchanged_value_is_not_a_change(make_host: MakeHost) -> None:
    # Change detection compares plaintext, though each save writes a fresh token.
    host = Hypervisor.objects.get(pk=make_host("hv-1", credentials=KEY).pk)
    field = Hypervisor._meta.get_field("credentials")
    assert field.to_python(KEY) == KEY
    assert field.to_python(stored(host, "credentials")) == KEY
    assert host.credentials == Hypervisor.objects.get(pk=host.pk).credentials


@pytest.mark.django_db
def test_rotation_by_prepending_a_key_still_reads_old_rows(
    region: Region, fresh_keys: None
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(FERNET_KEYS=[old]):
        host = Hypervisor.objects.create(
            name="hv-1", region=region, uri="test:///default", credentials=KEY
        )
        secrets._fernet.cache_clear()
    old_token = stored(host, "credentials")
    with override_settings(FERNET_KEYS=[new, old]):
        assert Hypervisor.objects.get(pk=host.pk).credentials == KEY
        host.save()  # a write re-encrypts with the first key
        assert Fernet(new.encode()).decrypt(stored(host, "credentials").encode()).decode() == KEY
        assert stored(host, "credentials") != old_token
        secrets._fernet.cache_clear()
    with override_settings(FERNET_KEYS=[new]):
        assert Hypervisor.objects.get(pk=host.pk).credentials == KEY
