"""Fault injection for tests and demos: CLOUD_FAULTS="import_image:0.5,launch_k3s:1".

Worker steps go through a wrapper around the real driver that fails the driver call that
carries the step (its `driver_call` in provisioning.steps); guest steps are failed by the
guest simulator. Nothing is injected when unset.
"""

import random
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from provisioning import failures, steps
from provisioning.drivers.base import HypervisorDriver, PermanentDriverError


def probabilities() -> dict[str, float]:
    table: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in settings.CLOUD_FAULTS.split(","))):
        step, _, chance = item.partition(":")
        if not steps.is_step(step):
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
        spec = steps.carried_by(name)
        if spec is None:
            return call
        step = spec.name

        def maybe_fail(*args: Any, **kwargs: Any) -> Any:
            if strikes(step):
                raise PermanentDriverError(failures.INJECTED_FAULT, f"Injected fault at {step}.")
            return call(*args, **kwargs)

        return maybe_fail


def wrap(driver: HypervisorDriver) -> HypervisorDriver:
    return FaultyDriver(driver) if probabilities() else driver
