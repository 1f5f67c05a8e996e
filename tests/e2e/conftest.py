"""The browser tier: the portal started for real in embedded mode, driven by Chromium.

One portal per session, as `make run` starts it (migrate, seed_demo, serve) but in a
temporary DATA_DIR on a free port, with the production-mode variables removed so the
tier always exercises SQLite, the filesystem broker and the polling websocket consumer.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests import portal_process

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
]


@dataclass(frozen=True)
class Portal:
    url: str
    username: str
    password: str
    data_dir: Path

    @property
    def log(self) -> Path:
        return self.data_dir / "serve.log"

    def manage(self, *args: str) -> str:
        """A management command against this portal's database."""
        port = int(self.url.rsplit(":", 1)[1])
        return portal_process.manage(portal_process.embedded_env(self.data_dir, port), *args)

    def server_errors(self) -> list[str]:
        """Tracebacks and 500s the web process or the worker logged so far."""
        markers = ("Traceback", "Internal Server Error")
        return [
            line for line in self.log.read_text().splitlines() if any(m in line for m in markers)
        ]


@pytest.fixture(scope="session")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    data_dir = tmp_path_factory.mktemp("portal")
    # Fast, but each step still takes long enough for the page to show it running.
    env = portal_process.portal_env(data_dir, CLOUD_GUEST_SIM_SCALE="0.05")
    portal_process.manage(env, "migrate", "--noinput")
    seeded = re.search(r"Demo login: (\S+) / (\S+)", portal_process.manage(env, "seed_demo"))
    assert seeded, "seed_demo did not print the demo login"
    with portal_process.serving(env) as ready:
        assert ready["checks"]["database"]["detail"] == "sqlite", f"not embedded: {ready}"
        yield Portal(env["PORTAL_URL"], seeded[1], seeded[2], data_dir)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
