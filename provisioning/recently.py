"""Slow-moving reads kept per process for a few seconds: every page or client watching a
launch asks each second or more for figures that move by the minute (step medians, the
versions a region offers)."""

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_every: list["Kept[Hashable, object]"] = []


class Kept(Generic[K, V]):
    """`read(key)` per key, read again once `seconds` old (by time.monotonic)."""

    def __init__(self, seconds: float, read: Callable[[K], V]) -> None:
        self.seconds = seconds
        self._read = read
        self._kept: dict[K, tuple[float, V]] = {}
        _every.append(self)  # type: ignore[arg-type]

    def __call__(self, key: K) -> V:
        kept = self._kept.get(key)
        if kept is not None and time.monotonic() - kept[0] < self.seconds:
            return kept[1]
        value = self._read(key)
        self._kept[key] = (time.monotonic(), value)
        return value

    def clear(self) -> None:
        self._kept.clear()


def forget_all() -> None:
    """Every process-wide memory of reads dropped (each test starts with none)."""
    for kept in _every:
        kept.clear()
