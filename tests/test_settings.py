"""Settings come only from the environment; bad values fail at start-up, clearly."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from cloud.env import Env, generated_secret

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


def test_embedded_defaults_generate_secrets_under_data_dir(tmp_path: Path) -> None:
    result = _manage("check", DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "secret_key").exists()
    assert (tmp_path / "fernet_key").exists()
