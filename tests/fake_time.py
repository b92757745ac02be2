"""A clock for retry tests: time moves only when something sleeps, and every sleep is recorded."""

from __future__ import annotations


class FakeTime:
    """A monotonic clock that moves only when slept on, recording each sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
