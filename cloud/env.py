"""Typed reads of environment variables, failing at start-up with the variable's name."""

import builtins
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class Env:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def str(self, name: builtins.str, default: builtins.str) -> builtins.str:
        return self.environ.get(name, default)

    def bool(self, name: builtins.str, default: bool) -> bool:
        raw = self.environ.get(name)
        if raw is None:
            return default
        value = raw.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")

    def int(self, name: builtins.str, default: int) -> int:
        raw = self.environ.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None

    def float(self, name: builtins.str, default: float) -> float:
        raw = self.environ.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return float(raw)
        except ValueError:
            raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None

    def list(
        self, name: builtins.str, default: builtins.list[builtins.str]
    ) -> builtins.list[builtins.str]:
        raw = self.environ.get(name)
        if raw is None:
            return default
        return [item.strip() for item in raw.split(",") if item.strip()]

    def path(self, name: builtins.str, default: Path) -> Path:
        raw = self.environ.get(name)
        return Path(raw).expanduser().resolve() if raw else default


def generated_secret(path: Path, kind: str) -> str:
    """Read a secret kept under DATA_DIR, creating it (mode 0600) on first use."""
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
