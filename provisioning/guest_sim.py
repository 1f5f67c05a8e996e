"""The guest simulator: plays a test-driver VM's guest, phoning home over HTTP.

libvirt's test driver boots nothing, so in embedded mode this stands in for the guest
agent of the cloud-init seed. It posts to the same endpoint a real guest does, with
realistic step durations (about 60 s in all, inside the seed's 90 s) multiplied by
CLOUD_GUEST_SIM_SCALE, and fails a step when CLOUD_FAULTS says so.
"""

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from django.conf import settings

from provisioning import faults
from provisioning.states import Step

# Seconds each guest step takes on a real VM from a warm base image (cloud-init boots,
# dependencies come from the airgap bundle, K3s starts and reports Ready).
DURATIONS = {Step.CLOUD_INIT: 14.0, Step.FETCH_DEPS: 18.0, Step.LAUNCH_K3S: 22.0}
SEQUENCE: list[tuple[Step, str]] = [
    (step, state) for step in DURATIONS for state in ("started", "done")
]
PHONE_HOME_PATH = "/api/v1/guest/phone-home"


@dataclass(frozen=True)
class Reply:
    status: int
    body: str


def post(payload: dict[str, str]) -> Reply:
    """POST a report to the portal, as the guest agent's curl does."""
    request = urllib.request.Request(  # noqa: S310  (the portal's own http(s) URL)
        settings.PORTAL_URL + PHONE_HOME_PATH,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return Reply(response.status, response.read().decode())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read().decode())


def next_report(index: int) -> tuple[dict[str, str], float]:
    """The report at `index` of the sequence, and the delay before the one after it."""
    step, state = SEQUENCE[index]
    if state == "done" and faults.strikes(step):
        state = "failed"
    delay = DURATIONS[step] * settings.GUEST_SIM_SCALE if state == "started" else 0.0
    return {"step": step.value, "state": state}, delay
