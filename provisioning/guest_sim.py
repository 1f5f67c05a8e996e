"""The guest simulator: plays a test-driver VM's guest, phoning home over HTTP.

libvirt's test driver boots nothing, so in embedded mode this stands in for the guest
agent of the cloud-init seed. It posts to the same endpoint a real guest does, the guest
steps of the step table with their durations (provisioning.steps) multiplied by
CLOUD_GUEST_SIM_SCALE, and fails a step when CLOUD_FAULTS says so.
"""

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from django.conf import settings

from provisioning import faults, steps
from provisioning.guest_seed import PHONE_HOME_PATH
from provisioning.models import Node

# The reports a guest posts, in order. The first guest step's start is posted by the
# seed's bootcmd on a real VM; the simulator posts it too.
SEQUENCE: list[tuple[steps.StepSpec, str]] = [
    (spec, state)
    for spec in steps.performed_by(steps.Performer.GUEST)
    for state in ("started", "done")
]


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


def plays(node_id: int) -> bool:
    """Only test-driver domains get a simulated guest; real VMs run the real agent."""
    uri = Node.objects.filter(pk=node_id).values_list("hypervisor__uri", flat=True).first()
    return bool(settings.GUEST_SIMULATOR and uri and uri.startswith("test:"))


def next_report(index: int) -> tuple[dict[str, str], float]:
    """The report at `index` of the sequence, and the delay before the one after it."""
    spec, state = SEQUENCE[index]
    if state == "done" and faults.strikes(spec.name):
        state = "failed"
    delay = spec.guest_seconds * settings.GUEST_SIM_SCALE if state == "started" else 0.0
    return {"step": spec.name, "state": state}, delay
