"""The customer's browser journey against a real embedded portal, in headless Chromium.

Each test gets its own browser context and fails on any console error or uncaught
exception in the page, or any error the portal logged. Screenshots for review land in
the session's DATA_DIR; UPDATE_SCREENSHOT=1 also refreshes the README's mid-launch picture
(docs/cluster-launch.png), so ordinary runs leave the tree clean.
"""

import base64
import os
import re
import time
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID
from playwright.sync_api import Page, ViewportSize, expect

from tests.e2e.conftest import CHROMIUM, Portal, Tab, assert_no_errors, log_in
from tests.portal_process import ROOT

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (CI installs Debian's chromium)"
    ),
]

PHONE: ViewportSize = {"width": 390, "height": 844}
STEPS = ("import_image", "start_vm", "cloud_init", "fetch_deps", "launch_k3s")
LAUNCH_SECONDS = 60
README_SCREENSHOT = ROOT / "docs" / "cluster-launch.png"

# Records, inside the page, whether the live page ever showed a launch in between:
# a step running or the bar part-way. Observing mutations catches states that last
# less than a test's polling interval.
WATCH_LIVE = """() => {
  window.__seen = {running: false, partial: false};
  const look = () => {
    if (document.querySelector('td.step[data-state="running"]')) window.__seen.running = true;
    const bar = document.querySelector('[role="progressbar"]');
    const value = bar ? Number(bar.getAttribute('aria-valuenow')) : 0;
    if (value >= 1 && value <= 99) window.__seen.partial = true;
  };
  look();
  const all = {subtree: true, childList: true, attributes: true};
  new MutationObserver(look).observe(document.body, all);
}"""


def cluster_names(page: Page) -> set[str]:
    page.goto("/clusters/")
    return set(page.locator("#cluster-rows td:first-child a").all_inner_texts())


def test_create_form_refuses_bad_input_in_place(tab: Tab, portal: Portal) -> None:
    log_in(tab, portal)
    page = tab.page
    before = cluster_names(page)
    page.get_by_role("link", name="Create cluster").click()
    page.get_by_label("Name", exact=True).fill("Bad Name!")
    page.get_by_label("Nodes").fill("0")
    tab.expected_failures.add("/clusters/new/")

    with page.expect_response(lambda r: r.request.method == "POST" and "/new/" in r.url) as sent:
        page.get_by_role("button", name="Launch cluster").click()
    assert sent.value.status == 400

    expect(page).to_have_url(re.compile(r"/clusters/new/$"))
    name_field = page.locator(".field", has=page.locator("#name"))
    expect(name_field).to_have_class(re.compile(r"\binvalid\b"))
    expect(name_field.locator(".error")).not_to_be_empty()
    expect(page.locator("#name")).to_have_value("Bad Name!")
    pool_row = page.locator(".pool-row").first
    expect(pool_row).to_have_class(re.compile(r"\binvalid\b"))
    expect(pool_row.locator(".error")).to_contain_text("count")
    expect(pool_row.get_by_label("Nodes")).to_have_value("0")
    # A pool added and removed again, by the page's own script (no inline handlers: the
    # Content-Security-Policy forbids them, and any violation is a console error here).
    page.get_by_role("button", name="Add pool").click()
    expect(page.locator(".pool-row")).to_have_count(2)
    page.locator(".pool-row").nth(1).get_by_role("button", name="Remove this pool").click()
    expect(page.locator(".pool-row")).to_have_count(1)

    assert cluster_names(page) <= before, "a refused form must not create a cluster"
    assert_no_errors(tab, portal)


@pytest.mark.parametrize("viewport", [PHONE])
def test_phone_layout_and_keyboard(tab: Tab, portal: Portal, review_dir: Path) -> None:
    log_in(tab, portal)
    page = tab.page
    # The body does not scroll sideways and nothing sticks out of the screen, except
    # inside the tables' own scrolling wrappers.
    fits = """() => {
      const width = document.documentElement.clientWidth;
      const out = [...document.querySelectorAll('main *')].filter(
        e => !e.closest('.table-wrap') && e.getBoundingClientRect().right > width + 0.5);
      return document.documentElement.scrollWidth <= width && out.length === 0;
    }"""

    page.goto("/clusters/")
    assert page.evaluate(fits), "the cluster list scrolls sideways on a phone"
    tab.shot(review_dir, "phone-cluster-list")

    create = page.get_by_role("link", name="Create cluster")
    for _ in range(30):
        page.keyboard.press("Tab")
        if create.evaluate("element => element === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the Create cluster button")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/clusters/new/$"))
    page.locator("#name").press_sequentially("phone")
    expect(page.locator("#preflight")).to_contain_text("3 nodes on 3 hosts in demo")
    assert page.evaluate(fits), "the create form scrolls sideways on a phone"
    tab.shot(review_dir, "phone-cluster-form")

    # The cluster page: each node's current step and status, and the node table needs no
    # sideways scrolling either.
    page.get_by_role("button", name="Launch cluster").click()
    expect(page.locator("#status-badge")).to_have_text("running", timeout=30_000)
    rows = page.locator("#nodes tbody tr")
    expect(rows).to_have_count(3)
    for row in rows.all():
        expect(row.locator("td.current")).to_be_visible()
        expect(row.locator("td.current")).to_contain_text("Launch K3s: ✔ done")
        expect(row.locator(".badge")).to_have_text("running")
    table_fits = page.locator("#nodes .table-wrap").evaluate("w => w.scrollWidth <= w.clientWidth")
    assert table_fits and page.evaluate(fits), "the node table scrolls sideways on a phone"
    tab.shot(review_dir, "phone-cluster-page")
    assert_no_errors(tab, portal)


def step_states(page: Page) -> list[str]:
    return page.locator("#nodes td.step").evaluate_all("cells => cells.map(c => c.dataset.state)")


def test_launch_watch_live_download_and_delete(tab: Tab, portal: Portal, review_dir: Path) -> None:
    page = tab.page
    page.goto("/accounts/login/")
    tab.shot(review_dir, "login")
    log_in(tab, portal)
    tokens = page.goto("/tokens/")
    assert tokens is not None and "script-src 'self'" in tokens.headers["content-security-policy"]
    tab.shot(review_dir, "tokens")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Clusters").click()
    tab.shot(review_dir, "cluster-list")
    page.get_by_role("link", name="Create cluster").click()
    name = "web"  # each session has its own DATA_DIR, so the name is free
    page.get_by_label("Name", exact=True).fill(name)
    pool = page.locator(".pool-row").first
    pool.get_by_label("Pool name").fill("workers")
    pool.get_by_label("Size").select_option("small")
    pool.get_by_label("Nodes").fill("3")
    expect(page.locator("#preflight")).to_contain_text("3 nodes on 3 hosts in demo")
    expect(page.locator("#preflight")).to_contain_text("within quota")
    tab.shot(review_dir, "cluster-form")

    page.get_by_role("button", name="Launch cluster").click()
    expect(page).to_have_url(re.compile(r"/clusters/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    page.evaluate("window.__marker = 1")
    page.evaluate(WATCH_LIVE)
    # The websocket is open (not the polling fallback): the page marks the body.
    expect(page.locator("body")).to_have_class(re.compile(r"\bws-live\b"))

    # Watch without reloading; photograph the page half-way: the first two steps done on
    # every node and some later one running.
    bar = page.get_by_role("progressbar", name="Launch progress")
    badge = page.locator("#status-badge")
    deadline = time.monotonic() + LAUNCH_SECONDS
    photographed = False
    while True:
        states = step_states(page)
        if not photographed and states.count("done") >= 6 and "running" in states:
            tab.shot(review_dir, "cluster-launch", full_page=False)
            if os.environ.get("UPDATE_SCREENSHOT") == "1":
                page.screenshot(path=README_SCREENSHOT)
            photographed = True
        finished = len(states) == 3 * len(STEPS) and set(states) == {"done"}
        if (
            finished
            and bar.get_attribute("aria-valuenow") == "100"
            and badge.inner_text().strip() == "running"
        ):
            break
        assert "failed" not in states, f"a step failed: {page.locator('#nodes').inner_text()}"
        assert time.monotonic() < deadline, f"not running after {LAUNCH_SECONDS} s: {states}"
        page.wait_for_timeout(100)

    assert page.evaluate("window.__marker") == 1, "the page was reloaded"
    seen = page.evaluate("window.__seen")
    assert seen["running"] or seen["partial"], f"no intermediate state was shown: {seen}"
    assert photographed, "never saw two steps done on every node and a later one running"
    for row in page.locator("#nodes tbody tr").all():
        cells = row.locator("td.step")
        assert [c.get_attribute("data-step") for c in cells.all()] == list(STEPS)
        expect(cells.filter(has_text=re.compile(r"✔ \d+\.\d s"))).to_have_count(len(STEPS))
    ready = page.locator("#progress").inner_text()
    took = re.search(r"Ready in (\d+(?:\.\d)?) s", ready)
    assert took and 0 < float(took[1]) < 90, ready
    expect(page.locator("#progress")).to_contain_text("beaten")
    # Each running node's first heartbeat reaches the open page: healthy, with its figures.
    health = page.locator("#health tbody tr")
    expect(health.and_(page.locator("[data-health=healthy]"))).to_have_count(3, timeout=15_000)
    expect(page.locator("#health")).to_contain_text("3 of 3 running nodes healthy")
    expect(health.first.locator("svg.spark polyline")).to_have_count(2)
    tab.shot(review_dir, "cluster-running")

    with page.expect_download() as download:
        page.get_by_label("Role").select_option("admin")
        page.get_by_role("button", name="Download kubeconfig").click()
    assert download.value.suggested_filename == f"{name}-admin.kubeconfig.yaml"
    kubeconfig = yaml.safe_load(Path(download.value.path()).read_text())
    server = kubeconfig["clusters"][0]["cluster"]["server"]
    server_row = page.locator("#nodes tbody tr", has_text="(server)")
    assert server == f"https://{server_row.locator('td.ip code').inner_text()}:6443"
    assert re.fullmatch(r"https://\d+\.\d+\.\d+\.\d+:6443", server)
    pem = base64.b64decode(kubeconfig["users"][0]["user"]["client-certificate-data"])
    subject = x509.load_pem_x509_certificate(pem).subject
    organisations = [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert organisations == ["portal:admin"]

    page.get_by_text("Delete this cluster").click()
    page.get_by_label(re.compile("to confirm")).fill(name)
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator("#status-badge")).to_have_text("deleted", timeout=30_000)
    # The page says deleted, and only that: no progress bar, no kubeconfig to download,
    # no "Deleting ..." banner left over; the newest event heads the timeline.
    expect(page.locator("#progress h2")).to_have_text("Deleted")
    expect(page.get_by_role("progressbar")).to_have_count(0)
    expect(page.get_by_role("button", name="Download kubeconfig")).to_have_count(0)
    expect(page.locator(".msg.transient")).to_have_count(0)
    expect(page.locator("#timeline li").first).to_contain_text("Cluster deleted")
    assert name not in cluster_names(page)
    assert_no_errors(tab, portal)


def test_account_pages_are_the_portals_own(tab: Tab, portal: Portal, review_dir: Path) -> None:
    """Not found, password reset and the members page with its pending invitations, all in
    the portal's style (no Django or admin defaults) and working under the CSP."""
    page = tab.page
    tab.expected_failures.add("/no/such/page/")
    page.goto("/no/such/page/")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator(".brand")).to_be_visible()

    page.goto("/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    expect(page.get_by_text("Django administration")).to_have_count(0)
    page.get_by_label("Email").fill("nobody@example.com")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    tab.shot(review_dir, "password-reset-sent")

    log_in(tab, portal)
    page.goto("/members/")
    page.get_by_label("Email").fill("invitee@example.com")
    page.get_by_role("button", name="Send invitation").click()
    pending = page.locator("ul.invitations li", has_text="invitee@example.com")
    expect(pending).to_be_visible()
    pending.get_by_role("button", name="Resend").click()
    expect(page.locator(".msg.success")).to_contain_text("again (a new link)")
    tab.shot(review_dir, "members-pending")
    page.locator("ul.invitations li", has_text="invitee@example.com").get_by_role(
        "button", name="Revoke"
    ).click()
    expect(page.locator(".msg.success")).to_contain_text("revoked")
    expect(page.locator("ul.invitations li", has_text="invitee@example.com")).to_have_count(0)
    assert_no_errors(tab, portal)


def test_deleting_a_network_asks_first(tab: Tab, portal: Portal, review_dir: Path) -> None:
    page = tab.page
    log_in(tab, portal)
    page.goto("/networks/")
    page.get_by_label("Name").fill("scratch")
    page.get_by_label("CIDR").fill("10.77.0.0/24")
    page.get_by_role("button", name="Create network").click()
    row = page.locator("tbody tr", has_text="scratch")
    expect(row).to_be_visible()
    delete = row.get_by_role("button", name="Delete scratch")
    expect(delete).to_be_hidden()  # behind its confirmation
    row.get_by_text("Delete", exact=True).click()
    expect(row).to_contain_text("Its addresses and firewalls go with it.")
    tab.shot(review_dir, "network-delete-confirm")
    delete.click()
    expect(page.locator(".msg.success")).to_contain_text("Network scratch deleted.")
    expect(page.locator("tbody tr", has_text="scratch")).to_have_count(0)
    assert_no_errors(tab, portal)
