"""Smoke test of the benchmark suite: a quick run writes every figure.

Timing is not judged here (a loaded CI machine would make that flaky); ``python -m benchmarks`` is.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIGURES = (
    "call_overhead", "call_overhead_isolated", "end_to_end", "end_to_end_inprocess", "startup_isolated",
    "startup_inprocess", "convert", "concurrency", "concurrency_64", "worker_rss", "growth_convert", "growth_calls",
    "growth_concurrency", "connections",
)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_a_quick_run_writes_every_figure_as_json(tmp_path):
    path = tmp_path / "figures.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", str(path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    # 0: every target met, 1: some missed; anything else is a crash or a usage error.
    assert completed.returncode in (0, 1), completed.stderr
    figures = json.loads(path.read_text(encoding="utf-8"))
    assert set(FIGURES) <= set(figures)
    for name in FIGURES:
        record = figures[name]
        assert all(_number(record[key]) for key in ("ours", "baseline", "ratio")), (name, record)
        assert isinstance(record["unit"], str) and record["unit"], (name, record)
        assert name in completed.stdout  # the table names it too
    assert figures["connections"]["baseline"] == 1
    assert figures["worker_rss"]["unit"] == "bytes" and figures["worker_rss"]["ours"] > 1 << 20
    for name in ("growth_convert", "growth_calls", "growth_concurrency"):
        assert figures[name]["unit"] == "slope" and len(figures[name]["info"]) >= 2, figures[name]
