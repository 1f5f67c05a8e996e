"""Why a node failed: the stable `Node.error_code` values (documented in docs/error-codes.md).

The customer sees the code with a human message; scripts may match on the code, so a code
is never renamed. Driver codes come from provisioning.drivers (PermanentDriverError).
"""

from typing import Any, cast

from django.db import models

from provisioning import steps

HYPERVISOR_UNREACHABLE = "hypervisor_unreachable"
STEP_TIMEOUT = "step_timeout"
SERVER_FAILED = "server_failed"
INJECTED_FAULT = "injected_fault"
GUEST_UNREACHABLE = "guest_unreachable"
# What a guest itself may name when it reports a failure (else `<step>_failed`).
K3S_BUNDLE_MISSING = "k3s_bundle_missing"
GUEST_CODES = (K3S_BUNDLE_MISSING,)

_PORTAL = [
    (HYPERVISOR_UNREACHABLE, "The hypervisor stayed unreachable through every retry"),
    (STEP_TIMEOUT, "A step made no progress within STEP_TIMEOUT_SECONDS"),
    (SERVER_FAILED, "The cluster's server node failed, so this agent cannot join"),
    (INJECTED_FAULT, "A fault injected by CLOUD_FAULTS (tests and demos)"),
    (GUEST_UNREACHABLE, "The guest never phoned home after its VM started"),
    (K3S_BUNDLE_MISSING, "The base image has no K3s bundle (built without one)"),
]
# What a driver's PermanentDriverError says (provisioning/drivers/libvirt/, xml.py).
_DRIVER = [
    ("invalid_config", "The hypervisor refused the generated configuration"),
    ("unsupported", "The hypervisor cannot do what the step asks"),
    ("out_of_memory", "The hypervisor has not enough free memory"),
    ("no_such_volume", "A volume the step needs is missing (e.g. the base image)"),
    ("no_such_pool", "The hypervisor's storage pool is missing"),
    ("no_such_domain", "The node's domain vanished from the hypervisor"),
    ("no_such_network", "The tenant network is missing on the hypervisor"),
    ("no_such_nwfilter", "The firewall filter is missing on the hypervisor"),
    ("libvirt_error", "Any other libvirt error"),
]


def step_failed(step: str, code: str = "") -> str:
    """The code of a guest that reports `step` failed: one it may name, else the step's."""
    return code if code in GUEST_CODES else f"{step}_failed"


_GUEST = [
    (step_failed(spec.name), f"The guest reported {spec.label} failed")
    for spec in steps.performed_by(steps.Performer.GUEST)
]

DOCUMENTED: list[tuple[str, str]] = _PORTAL + _DRIVER + _GUEST

# The functional Enum API is not in django-stubs, hence the cast.
NodeError = cast(
    type[models.TextChoices],
    cast(Any, models.TextChoices)(
        "NodeError", [(code.upper(), (code, why)) for code, why in DOCUMENTED]
    ),
)
