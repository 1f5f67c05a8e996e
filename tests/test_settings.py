"""Settings come only from the environment; bad values fail at start-up, clearly."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.views import APIView

from cloud.env import Env
from portal.secrets import generated_secret
from provisioning.guest_views import PhoneHomeThrottle

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DATABASE_URL"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_typed_helpers() -> None:
    env = Env({"A": "yes", "B": "0", "N": "42", "L": "a, b,,c", "F": "0.5"})
    assert env.bool("A", False) is True
    assert env.bool("B", True) is False
    assert env.bool("MISSING", True) is True
    assert env.int("N", 1) == 42
    assert env.float("F", 1.0) == 0.5
    assert env.list("L", []) == ["a", "b", "c"]
    assert env.list("MISSING", ["x"]) == ["x"]


@pytest.mark.parametrize(
    ("method", "value", "message"),
    [
        ("bool", "maybe", "not a boolean"),
        ("int", "12a", "not an integer"),
        ("float", "x", "not a number"),
    ],
)
def test_bad_values_name_the_variable(method: str, value: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=f"VAR='{value}' is {message}"):
        getattr(Env({"VAR": value}), method)("VAR", None)


def test_generated_secret_is_kept(tmp_path: Path) -> None:
    first = generated_secret(tmp_path / "k", "fernet")
    assert generated_secret(tmp_path / "k", "fernet") == first
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600


def test_bad_setting_is_a_one_line_error_at_start(tmp_path: Path) -> None:
    result = _manage("check", DEBUG="maybe", DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "Configuration error: DEBUG='maybe' is not a boolean" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_deploy_is_clean_with_production_values(tmp_path: Path) -> None:
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        HTTPS="1",
        SECRET_KEY="x" * 20 + "production-only-secret-value-with-enough-entropy-1234567890",
        ALLOWED_HOSTS="portal.example.com",
        DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if not p.is_dir())


def test_importing_settings_writes_no_file(tmp_path: Path) -> None:
    # Settings, then every app and model, as any process starts; no secret is made.
    start = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "FERNET_KEYS"}}
    result = subprocess.run(
        [sys.executable, "-c", start],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "cloud.settings", "DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "False", result.stderr
    assert _files(tmp_path) == []


def test_init_secrets_writes_each_secret_once_and_privately(tmp_path: Path) -> None:
    assert _manage("init_secrets", DATA_DIR=str(tmp_path)).returncode == 0
    assert [p.name for p in _files(tmp_path)] == ["fernet_key", "secret_key"]
    first = {p.name: p.read_text() for p in _files(tmp_path)}
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in _files(tmp_path))

    again = _manage("init_secrets", DATA_DIR=str(tmp_path))
    assert again.returncode == 0 and again.stdout == ""
    assert {p.name: p.read_text() for p in _files(tmp_path)} == first


def test_secrets_from_the_environment_need_no_file(tmp_path: Path) -> None:
    result = _manage(
        "init_secrets", DATA_DIR=str(tmp_path), SECRET_KEY="s" * 50, FERNET_KEYS="f" * 44
    )
    assert result.returncode == 0, result.stderr
    assert _files(tmp_path) == []


def test_beat_runs_every_periodic_task_at_its_interval() -> None:
    schedule = {
        entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert schedule == {
        "observability.tasks.heartbeat": settings.WORKER_HEARTBEAT_SECONDS,
        "provisioning.sync_inventory": settings.INVENTORY_SYNC_SECONDS,
        "provisioning.reap_stalled": settings.REAPER_SECONDS,
        "provisioning.watch_health": settings.HEARTBEAT_SECONDS / 2,
        "provisioning.drain_hosts": 10,
        "provisioning.roll_upgrades": 10,
        "provisioning.simulate_heartbeats": settings.HEARTBEAT_SECONDS,
        "provisioning.reconcile": settings.RECONCILE_SECONDS,
        "provisioning.ping_agents": settings.AGENT_PING_SECONDS,
        "observability.webhooks.sweep": 10,
    }


def test_cache_is_shared_redis_or_database() -> None:
    backend = settings.CACHES["default"]["BACKEND"]
    expected = "redis.RedisCache" if settings.CACHE_URL else "db.DatabaseCache"
    assert backend == f"django.core.cache.backends.{expected}"


@pytest.mark.django_db
def test_phone_home_throttle_counts_once_across_cache_clients() -> None:
    # Two cache clients stand for two web processes: one count, shared.
    caches["default"].clear()
    first, second = caches.create_connection("default"), caches.create_connection("default")
    assert first is not second
    request = Request(
        RequestFactory().post("/", {"token": "node-token"}, content_type="application/json"),
        parsers=[JSONParser()],
    )

    def allowed(cache: object) -> bool:
        throttle = PhoneHomeThrottle()
        throttle.cache = cache  # type: ignore[assignment]
        return throttle.allow_request(request, APIView())

    limit = int(PhoneHomeThrottle.rate.split("/")[0])
    assert all(allowed(first if n % 2 else second) for n in range(limit))
    assert not allowed(first)
    assert not allowed(second)
    caches["default"].clear()
