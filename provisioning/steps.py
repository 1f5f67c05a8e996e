"""The launch steps of a node, in order: the one table every other module reads.

Adding a step means a row here and, for a guest step, its report in the guest agent
script (provisioning/guest_agent.sh); the tasks, phone-home checks, fault injection,
guest simulator, ETA and pages all follow the table. A worker step also needs its
driver work in provisioning.pipeline (WORKER_STEPS), which checks it has one per row.
"""

import enum
from dataclasses import dataclass
from typing import Any, cast

from django.db import models


class Performer(enum.StrEnum):
    WORKER = "worker"  # a Celery worker, through the hypervisor driver
    GUEST = "guest"  # the VM itself, reporting over phone-home


@dataclass(frozen=True)
class StepSpec:
    name: str
    label: str
    performer: Performer
    # The driver method that carries a worker step: fault injection fails that call.
    driver_call: str = ""
    # How long the guest simulator takes for a guest step (seconds, before scaling).
    guest_seconds: float = 0.0
    # An agent node may not start this step before its cluster's server node is Ready.
    waits_for_server: bool = False


# Guest durations are a real VM's from a warm base image (about 60 s in all, inside the
# seed's 90 s): cloud-init boots, dependencies come from the airgap bundle, K3s starts.
TABLE: tuple[StepSpec, ...] = (
    StepSpec("import_image", "Import image", Performer.WORKER, driver_call="ensure_volume"),
    StepSpec("start_vm", "Start VM", Performer.WORKER, driver_call="ensure_domain"),
    StepSpec("cloud_init", "Cloud-init", Performer.GUEST, guest_seconds=14.0),
    StepSpec("fetch_deps", "Fetch dependencies", Performer.GUEST, guest_seconds=18.0),
    StepSpec(
        "launch_k3s", "Launch K3s", Performer.GUEST, guest_seconds=22.0, waits_for_server=True
    ),
)

NAMES: tuple[str, ...] = tuple(spec.name for spec in TABLE)
_BY_NAME = {spec.name: spec for spec in TABLE}

# The choices of NodeStep.step (values and labels as stored since the start).
# The functional Enum API is not in django-stubs, hence the cast.
Step = cast(
    type[models.TextChoices],
    cast(Any, models.TextChoices)("Step", [(s.name.upper(), (s.name, s.label)) for s in TABLE]),
)


def get(name: str) -> StepSpec:
    """The step called `name`; KeyError for a name that is not in the table."""
    return _BY_NAME[name]


def is_step(name: str) -> bool:
    return name in _BY_NAME


def label(name: str) -> str:
    """The step's label, or the name itself for a blank or unknown one (old events)."""
    spec = _BY_NAME.get(name)
    return spec.label if spec else name


def first() -> StepSpec:
    return TABLE[0]


def next_step(name: str) -> StepSpec | None:
    """The step after `name`, None after the last."""
    index = NAMES.index(name) + 1
    return TABLE[index] if index < len(TABLE) else None


def previous_step(name: str) -> StepSpec | None:
    """The step before `name`, None before the first."""
    index = NAMES.index(name)
    return TABLE[index - 1] if index > 0 else None


def performed_by(performer: Performer) -> tuple[StepSpec, ...]:
    return tuple(spec for spec in TABLE if spec.performer == performer)


def carried_by(driver_call: str) -> StepSpec | None:
    """The worker step a driver method carries, if any (for fault injection)."""
    return next((spec for spec in TABLE if driver_call and spec.driver_call == driver_call), None)
