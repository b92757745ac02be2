"""The numbers ``GET /metrics`` reports, in Prometheus' text exposition format (version 0.0.4).

Counted in this process (each node reports its own; Prometheus sums them): runs by outcome and their
duration, integration calls by function, account and outcome, workers busy and idle, the queue's depth,
and the waits for an account's request budget or pause (from :mod:`luabridge._budgets`).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from .._budgets import gate
from .._result import RunResult

# Seconds: a run is from milliseconds (no calls) to its time limit (30 s by default, more by ceiling).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    """Counters one node keeps; ``gauges`` reads the pool's and the queue's state when scraped."""

    def __init__(self, gauges: Callable[[], dict[str, float]]) -> None:
        self._gauges = gauges
        self._lock = threading.Lock()
        self.runs: Counter[str] = Counter()
        self.calls: Counter[tuple[str, str, str]] = Counter()
        self.rejected: Counter[str] = Counter()  # requests refused before they ran, by reason
        self._buckets = [0] * len(DURATION_BUCKETS)
        self._duration_sum = 0.0
        self._duration_count = 0

    def observe(self, result: RunResult) -> None:
        """Count one finished run and its calls."""
        outcome = "ok" if result.ok else result.error.type if result.error else "failed"
        seconds = result.duration_ms / 1000
        with self._lock:
            self.runs[outcome] += 1
            for call in result.calls:
                self.calls[call.function, call.account, call.outcome] += 1
            for index, bound in enumerate(DURATION_BUCKETS):
                if seconds <= bound:
                    self._buckets[index] += 1
            self._duration_sum += seconds
            self._duration_count += 1

    def refuse(self, reason: str) -> None:
        with self._lock:
            self.rejected[reason] += 1

    def render(self) -> str:
        """Every metric as Prometheus text."""
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            lines.append(f"# HELP luabridge_{name} {help_text}")
            lines.append(f"# TYPE luabridge_{name} {kind}")

        with self._lock:
            family("runs_total", "counter", "Finished runs by outcome (ok, or the error type).")
            for outcome, count in sorted(self.runs.items()):
                lines.append(f"luabridge_runs_total{_labels(outcome=outcome)} {count}")
            family("requests_refused_total", "counter", "Requests refused before they ran, by reason.")
            for reason, count in sorted(self.rejected.items()):
                lines.append(f"luabridge_requests_refused_total{_labels(reason=reason)} {count}")
            family("run_duration_seconds", "histogram", "Time a run took, from its start in a worker.")
            for bound, count in zip(DURATION_BUCKETS, self._buckets, strict=True):
                lines.append(f"luabridge_run_duration_seconds_bucket{_labels(le=f'{bound:g}')} {count}")
            lines.append(f'luabridge_run_duration_seconds_bucket{{le="+Inf"}} {self._duration_count}')
            lines.append(f"luabridge_run_duration_seconds_sum {self._duration_sum:.6f}")
            lines.append(f"luabridge_run_duration_seconds_count {self._duration_count}")
            family("calls_total", "counter", "Integration calls by function, account and outcome.")
            for (function, account, outcome), count in sorted(self.calls.items()):
                labels = _labels(function=function, account=account, outcome=outcome)
                lines.append(f"luabridge_calls_total{labels} {count}")
        gauges = self._gauges()
        family("workers", "gauge", "Worker slots by state.")
        for state in ("busy", "idle"):
            lines.append(f"luabridge_workers{_labels(state=state)} {gauges[state]:g}")
        family("queue_depth", "gauge", "Runs waiting for a worker.")
        lines.append(f"luabridge_queue_depth {gauges['queued']:g}")
        waits = {name: list(count) for name, count in gate().waits.items()}
        family("rate_limit_waits_total", "counter", "Requests that waited for their account's budget or pause.")
        for account, (count, _) in sorted(waits.items()):
            lines.append(f"luabridge_rate_limit_waits_total{_labels(account=account)} {count:g}")
        family("rate_limit_wait_seconds_total", "counter", "Seconds requests waited for their account.")
        for account, (_, seconds) in sorted(waits.items()):
            lines.append(f"luabridge_rate_limit_wait_seconds_total{_labels(account=account)} {seconds:.6f}")
        return "\n".join(lines) + "\n"


def _labels(**labels: str) -> str:
    escaped = (f'{name}="{_escape(value)}"' for name, value in labels.items())
    return "{" + ",".join(escaped) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
