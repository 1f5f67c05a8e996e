"""The browser tier: the portal started for real in embedded mode, driven by Chromium.

One portal per session, as `make run` starts it (migrate, seed_demo, serve) but in a
temporary DATA_DIR on a free port, with the production-mode variables removed so the
tier always exercises SQLite, the filesystem broker and the polling websocket consumer.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

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
    # Fast, but each step still takes long enough for the page to show it running; a
    # heartbeat every 2 s, so a server upgrades in place in seconds.
    env = portal_process.portal_env(
        data_dir, CLOUD_GUEST_SIM_SCALE="0.05", HEARTBEAT_SECONDS="2", HEARTBEAT_STALE_SECONDS="30"
    )
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


DESKTOP: ViewportSize = {"width": 1280, "height": 900}


@dataclass
class Tab:
    page: Page
    errors: list[str] = field(default_factory=list)
    # Paths whose failed status Chromium logs as a console error although the test
    # expects it. base.html links no icon, so Chromium's own /favicon.ico probe is one.
    expected_failures: set[str] = field(default_factory=lambda: {"/favicon.ico"})

    def shot(self, directory: Path, name: str, full_page: bool = True) -> None:
        self.page.screenshot(path=directory / f"{name}.png", full_page=full_page)


@pytest.fixture
def viewport() -> ViewportSize:
    return DESKTOP


@pytest.fixture
def tab(browser: Browser, portal: Portal, viewport: ViewportSize) -> Iterator[Tab]:
    context = browser.new_context(base_url=portal.url, viewport=viewport, accept_downloads=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    opened = Tab(page)

    def console(message: ConsoleMessage) -> None:
        path = urlsplit(message.location.get("url", "")).path
        if message.type == "error" and not (
            message.text.startswith("Failed to load resource") and path in opened.expected_failures
        ):
            opened.errors.append(f"console: {message.text} at {message.location}")

    def page_error(error: Error) -> None:
        opened.errors.append(f"pageerror: {error.message}")

    page.on("console", console)
    page.on("pageerror", page_error)
    yield opened
    context.close()


@pytest.fixture(scope="session")
def review_dir(portal: Portal) -> Path:
    """Screenshots for a human's review (not committed), kept with the portal's data."""
    folder = portal.data_dir / "screenshots"
    folder.mkdir(exist_ok=True)
    return folder


def log_in(tab: Tab, portal: Portal) -> None:
    page = tab.page
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(portal.username)
    page.get_by_label("Password").fill(portal.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def assert_no_errors(tab: Tab, portal: Portal) -> None:
    assert tab.errors == [], "the browser reported errors"
    assert portal.server_errors() == [], f"the portal logged errors, see {portal.log}"
