"""Measuring two sides of a figure fairly on a noisy machine, and the record a figure produces.

Both sides of a figure are measured in the same run, interleaved: a sample of ours, a sample of the
baseline, then the other way round, so that drift in the machine's load (other processes, frequency
scaling) hits both alike. A sample is the mean wall time over a small batch; a figure reports the median
of its samples and their range (min to max) as the spread.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sample:
    """The median of a set of measurements and their range."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> Sample:
        return cls(statistics.median(values), min(values), max(values))

    @classmethod
    def exactly(cls, value: float) -> Sample:
        """A value that is counted, not timed: no spread."""
        return cls(value, value, value)


@dataclass(frozen=True)
class Target:
    """What a figure must reach: ``ours / baseline`` (or ``ours`` itself when ``absolute``) at most ``limit``.

    ``exact`` asks for equality instead (a count). ``text`` is how the table shows it.
    """

    limit: float
    text: str
    absolute: bool = False
    exact: bool = False

    def met_by(self, ours: float, ratio: float) -> bool:
        value = ours if self.absolute else ratio
        return value == self.limit if self.exact else value <= self.limit


@dataclass(frozen=True)
class Figure:
    """One measured figure: both sides, their unit, the target, and values reported for information
    (floats are in the figure's unit, integers are counts)."""

    name: str
    unit: str
    ours: Sample
    baseline: Sample
    target: Target
    info: dict[str, float | int] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.ours.median / self.baseline.median

    @property
    def passed(self) -> bool:
        return self.target.met_by(self.ours.median, self.ratio)

    def to_json(self) -> dict[str, Any]:
        """The JSON record (ours, baseline, unit, ratio), plus the target, the spread and the information values."""
        record: dict[str, Any] = {
            "ours": self.ours.median,
            "baseline": self.baseline.median,
            "unit": self.unit,
            "ratio": self.ratio,
            "target": self.target.text,
            "passed": self.passed,
            "spread": {"ours": [self.ours.low, self.ours.high], "baseline": [self.baseline.low, self.baseline.high]},
        }
        if self.info:
            record["info"] = dict(self.info)
        return record


def per_call(action: Callable[[], Any], number: int) -> Callable[[], float]:
    """A sampler: the mean wall time of ``number`` calls of ``action``, in seconds."""

    def sample() -> float:
        started = time.perf_counter()
        for _ in range(number):
            action()
        return (time.perf_counter() - started) / number

    return sample


def wall_time(action: Callable[[], Any]) -> Callable[[], float]:
    """A sampler: the wall time of one call of ``action``, in seconds."""
    return per_call(action, 1)


def difference(full: Callable[[], float], empty: Callable[[], float], count: int) -> Callable[[], float]:
    """A sampler: ``(full() - empty()) / count``, the cost of one of the ``count`` units ``full`` adds."""

    def sample() -> float:
        return (full() - empty()) / count

    return sample


def compare(*samplers: Callable[[], float], repeats: int, warmup: int = 1) -> list[Sample]:
    """Take ``repeats`` samples of each sampler, interleaved, rotating which goes first every round.

    ``warmup`` rounds of all of them are taken first and dropped (caches, connections, lazy imports).
    """
    for _ in range(warmup):
        for sampler in samplers:
            sampler()
    values: list[list[float]] = [[] for _ in samplers]
    for round_number in range(repeats):
        for offset in range(len(samplers)):
            index = (round_number + offset) % len(samplers)
            values[index].append(samplers[index]())
    return [Sample.of(taken) for taken in values]
