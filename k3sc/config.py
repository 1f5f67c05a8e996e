"""Where k3sc keeps its login: `$XDG_CONFIG_HOME/k3sc/config.yaml` (mode 0600, its folder
0700); `K3SC_URL` and `K3SC_TOKEN` in the environment win over the file."""

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_URL = "http://127.0.0.1:8000"


class NotLoggedIn(Exception):
    pass


@dataclass(frozen=True)
class Profile:
    url: str
    token: str


def path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec: a relative or empty value is ignored.
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "k3sc" / "config.yaml"


def stored() -> dict[str, str]:
    try:
        data = yaml.safe_load(path().read_text()) or {}
    except FileNotFoundError:
        return {}
    return (
        {k: str(v) for k, v in data.items() if k in ("url", "token")}
        if isinstance(data, dict)
        else {}
    )


def url() -> str:
    return os.environ.get("K3SC_URL") or stored().get("url") or DEFAULT_URL


def load() -> Profile:
    token = os.environ.get("K3SC_TOKEN") or stored().get("token")
    if not token:
        raise NotLoggedIn("Not logged in: run `k3sc login` (or set K3SC_TOKEN).")
    return Profile(url(), token)


def save(profile: Profile) -> Path:
    """Write the file readable by its owner alone, replacing it in one step."""
    target = path()
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    target.parent.chmod(0o700)
    temporary = target.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump({"url": profile.url, "token": profile.token}, out)
    os.chmod(temporary, 0o600)  # an older file of that name kept its own mode
    os.replace(temporary, target)
    return target


def remove() -> bool:
    try:
        path().unlink()
    except FileNotFoundError:
        return False
    return True
