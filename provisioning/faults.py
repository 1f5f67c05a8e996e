"""Fault injection for tests and demos: CLOUD_FAULTS="import_image:0.5,launch_k3s:1".

Driver steps go through a wrapper around the real driver that fails the step's driver
call; guest steps are failed by the guest simulator. Nothing is injected when unset.
"""

import random
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from provisioning.drivers.base import HypervisorDriver, PermanentDriverError
from provisioning.states import STEPS, Step

# The driver call that carries each driver step.
_DRIVER_CALLS = {"ensure_volume": Step.IMPORT_IMAGE, "ensure_domain": Step.START_VM}


def probabilities() -> dict[str, float]:
    table: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in settings.CLOUD_FAULTS.split(","))):
        step, _, chance = item.partition(":")
        if step not in STEPS:
            raise ImproperlyConfigured(f"CLOUD_FAULTS: unknown step {step!r}")
        try:
            table[step] = float(chance or 1)
        except ValueError:
            raise ImproperlyConfigured(f"CLOUD_FAULTS: {item!r} is not step:probability") from None
    return table


def strikes(step: str) -> bool:
    chance = probabilities().get(step, 0.0)
    return chance > 0 and random.random() < chance  # noqa: S311  (not security)


class FaultyDriver:
    """Passes every call to the real driver, failing a step's call when a fault strikes."""

    def __init__(self, inner: HypervisorDriver) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._inner, name)
        step = _DRIVER_CALLS.get(name)
        if step is None:
            return call

        def maybe_fail(*args: Any, **kwargs: Any) -> Any:
            if strikes(step):
                raise PermanentDriverError("injected_fault", f"Injected fault at {step}.")
            return call(*args, **kwargs)

        return maybe_fail


def wrap(driver: HypervisorDriver) -> HypervisorDriver:
    return FaultyDriver(driver) if probabilities() else driver
