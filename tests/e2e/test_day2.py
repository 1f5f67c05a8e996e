"""Day-2 journeys in headless Chromium against the real embedded portal: a customer
upgrades a cluster from its page and watches the rollout; staff, past their second factor,
drain a host from the console, see it empty, and find it all in the audit log."""

import re
import time
from pathlib import Path

from django_otp.oath import totp
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Portal, Tab, assert_no_errors, log_in
from tests.e2e.test_browser import pytestmark  # noqa: F401  (the browser tier's marks)

OLD, NEW = "v1.30.8+k3s1", "v1.31.4+k3s1"
STAFF_PASSWORD = "staff-console-pass-1"
MAKE_STAFF = f"""
from django.contrib.auth.models import User
from django_otp.plugins.otp_totp.models import TOTPDevice
user, _ = User.objects.get_or_create(username="ops", defaults={{"is_staff": True}})
user.set_password("{STAFF_PASSWORD}")
user.save()
print(TOTPDevice.objects.create(user=user, name="phone", confirmed=True).bin_key.hex())
"""


def launch(page: Page, name: str, nodes: int, version: str = NEW) -> None:
    page.goto("/clusters/new/")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("K3s version").select_option(version)
    page.locator(".pool-row").first.get_by_label("Nodes").fill(str(nodes))
    page.get_by_role("button", name="Launch cluster").click()
    expect(page).to_have_url(re.compile(r"/clusters/[0-9a-f-]{36}/$"))
    expect(page.locator("#status-badge")).to_have_text("running", timeout=60_000)


def test_a_customer_upgrades_from_the_cluster_page(
    tab: Tab, portal: Portal, review_dir: Path
) -> None:
    page = tab.page
    log_in(tab, portal)
    launch(page, "upgrade-me", 3, OLD)
    expect(page.locator("td.k3s-version code")).to_have_text([OLD] * 3)
    form = page.locator("#upgrade-form")
    expect(form).to_contain_text("Upgrade available")
    form.get_by_label(re.compile("Upgrade available")).select_option(NEW)
    form.get_by_role("button", name="Upgrade").click()
    expect(page.locator("#upgrade")).to_contain_text(f"Upgrading to {NEW}")
    tab.shot(review_dir, "cluster-upgrading")
    # Live, no reload: the server in place, then each agent replaced, then done.
    page.evaluate("window.__marker = 1")
    expect(page.locator("#timeline")).to_contain_text(f"Upgraded to {NEW}.", timeout=90_000)
    expect(page.locator("#upgrade")).to_have_count(0)
    running = page.locator("#nodes tbody tr", has=page.locator(".badge.running"))
    expect(running.locator("td.k3s-version code")).to_have_text([NEW] * 3, timeout=15_000)
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"
    tab.shot(review_dir, "cluster-upgraded")
    assert_no_errors(tab, portal)


def staff_log_in(page: Page, key: bytes) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("ops")
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto("/staff/hypervisors/")
    page.locator("input[name=code]").fill(f"{totp(key):06d}")
    page.locator("main button[type=submit]").click()
    page.goto("/staff/hypervisors/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hypervisors")


def test_staff_drain_a_host_and_read_the_console(
    tab: Tab, portal: Portal, review_dir: Path
) -> None:
    page = tab.page
    log_in(tab, portal)
    launch(page, "drain-me", 3)
    host = page.locator("#nodes tbody tr", has_text="drain-me-workers-1").locator("td").nth(1)
    host_name = host.inner_text().strip()
    page.get_by_role("button", name="Log out").click()

    key = bytes.fromhex(portal.manage("shell", "-c", MAKE_STAFF).strip().splitlines()[-1])
    staff_log_in(page, key)
    row = page.locator(f"#hypervisor-{host_name}")
    row.get_by_role("button", name="Drain").click()
    expect(page.locator(".msg")).to_contain_text(f"{host_name} is cordoned and draining")
    tab.shot(review_dir, "staff-draining")
    deadline = time.monotonic() + 60
    while "Draining" in page.locator(f"#hypervisor-{host_name}").inner_text():
        assert time.monotonic() < deadline, "the host never emptied"
        page.wait_for_timeout(500)
        page.reload()
    expect(page.locator(f"#hypervisor-{host_name}")).to_contain_text("Cordoned")

    page.get_by_role("link", name=host_name).click()
    expect(page.locator("#host-nodes")).to_contain_text("No node on this host.")
    tab.shot(review_dir, "staff-host")
    page.get_by_role("navigation", name="Staff console").get_by_role(
        "link", name="Clusters"
    ).click()
    expect(page.locator("#staff-clusters")).to_contain_text("drain-me")
    page.goto("/staff/nodes/?status=running&host=" + host_name)
    expect(page.locator("#staff-nodes")).to_contain_text("No node matches.")
    # The nodes that moved elsewhere, each at its last step (read from its step rows).
    page.goto("/staff/nodes/?status=running")
    moved = page.locator("#staff-nodes tbody tr", has_text="drain-me")
    expect(moved.first).to_contain_text("launch_k3s")
    tab.shot(review_dir, "staff-nodes")
    page.goto("/staff/audit/?action=hypervisor.")
    audit = page.locator("#audit")
    for action in ("hypervisor.cordon", "hypervisor.drain", "hypervisor.drained"):
        expect(audit.get_by_text(action, exact=True)).to_be_visible()
    tab.shot(review_dir, "staff-audit")
    assert_no_errors(tab, portal)
