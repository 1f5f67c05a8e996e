"""The OpenAPI document: generated from the code, valid, checked in, and served offline."""

import io
import re
from pathlib import Path

import pytest
import yaml
from django.apps import apps
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from openapi_spec_validator import validate

from cloud.schema import DATABASE_LIMITS, ERROR_CODES, STAFF_PREFIX
from portal.errors import DomainError

CHECKED_IN = Path(__file__).resolve().parents[1] / "docs" / "openapi.yaml"


def generated() -> str:
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return out.getvalue()


def test_the_checked_in_schema_is_the_code_s() -> None:
    assert generated() == CHECKED_IN.read_text(), (
        "docs/openapi.yaml differs from the code's schema: run `make openapi` and commit it"
    )


def test_the_checked_in_schema_is_valid_openapi_3() -> None:
    document = yaml.safe_load(CHECKED_IN.read_text())
    validate(document)
    assert document["openapi"].startswith("3.")
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def _every_subclass(cls: type[DomainError]) -> set[type[DomainError]]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _every_subclass(sub)
    return found


def test_every_domain_error_code_is_documented() -> None:
    apps.get_app_configs()  # the apps' modules define the subclasses
    for module in ("provisioning.inventory", "provisioning.phone_home", "networking.services"):
        __import__(module)
    documented = {code for codes in ERROR_CODES.values() for code in codes}
    for error in _every_subclass(DomainError):
        assert error.code in documented, f"{error.__name__}.code {error.code!r} undocumented"
        assert error.code in ERROR_CODES[str(error.status)], (error.__name__, error.status)


def test_each_operation_documents_its_errors() -> None:
    paths = yaml.safe_load(CHECKED_IN.read_text())["paths"]
    create = paths["/api/v1/clusters"]["post"]["responses"]
    assert {"202", "400", "401", "403", "409"} <= create.keys()
    detail = paths["/api/v1/clusters/{cluster_id}"]["get"]["responses"]
    assert {"200", "401", "403", "404"} <= detail.keys()
    assert "409" not in detail
    report = paths["/api/v1/guest/phone-home"]["post"]["responses"]
    assert {"200", "400", "404", "409", "429"} <= report.keys()
    assert "401" not in report  # the node token is in the body; no credentials needed


def test_no_request_body_has_a_member_an_error_answer_reserves() -> None:
    """A 400 is `{"code": "invalid", "<field>": [...]}`: a field named `code` would hide the
    error's code behind its own reasons."""
    schemas = yaml.safe_load(CHECKED_IN.read_text())["components"]["schemas"]
    for name, schema in schemas.items():
        if name.endswith("Request"):
            assert "code" not in schema.get("properties", {}), name


@pytest.mark.django_db
def test_the_served_schema_shows_the_staff_api_to_staff_only(staff: User) -> None:
    anonymous = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert anonymous.status_code == 200
    public_paths = anonymous.json()["paths"]
    assert "/api/v1/clusters" in public_paths
    assert not [p for p in public_paths if p.startswith(STAFF_PREFIX)]

    client = Client()
    client.force_login(staff)
    staff_paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert f"{STAFF_PREFIX}hypervisors" in staff_paths


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_the_api_readers_load_nothing_from_elsewhere(page: str) -> None:
    response = Client().get(page)
    assert response.status_code == 200
    html = response.content.decode()
    assert "https://" not in html and "http://" not in html  # no CDN, no web fonts
    sources = re.findall(r'<script src="([^"]+)"', html)
    assert sources and html.count("<script") == len(sources)  # CSP: no inline script
    assert all(src.startswith(("/static/drf_spectacular_sidecar/", page)) for src in sources)
    readers = [Client().get(src).content.decode() for src in sources if src.startswith(page)]
    assert "/api/schema/" in html + "".join(readers)
    policy = dict(d.strip().split(" ", 1) for d in response["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'"


def test_the_document_does_not_depend_on_the_database() -> None:
    """CI generates it on PostgreSQL, a laptop on SQLite: their integer columns' ranges
    (which DRF hands model fields as maxima) must not reach it."""
    text = CHECKED_IN.read_text()
    for limit in DATABASE_LIMITS:
        assert f"maximum: {limit}\n" not in text
