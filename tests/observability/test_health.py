import pytest
from django.test import Client

from observability.tasks import heartbeat

pytestmark = pytest.mark.django_db


def test_healthz() -> None:
    assert Client().get("/healthz").json() == {"status": "ok"}


def test_readyz_waits_for_a_worker() -> None:
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["worker"]["ok"] is False


def test_readyz_ready_after_a_heartbeat() -> None:
    heartbeat.delay()
    response = Client().get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["broker"]["ok"] is True
