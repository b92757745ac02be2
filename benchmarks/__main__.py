"""The command line: ``python -m benchmarks [--json PATH] [--quick] [--only NAME ...]``.

Prints one table (name, ours, baseline, ratio, target, pass or fail, spread as min to max of each side)
and, with ``--json``, writes the JSON record of every figure run. Exits 1 when a figure
misses its target.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from .figures import FIGURES
from .timing import Figure, Sample

COLUMNS = ("name", "ours", "baseline", "ratio", "target", "result", "spread (ours | baseline)")


def _amount(value: float, unit: str) -> str:
    """A value for the table: seconds in s, ms or us, bytes in MiB; anything else as a plain number."""
    if unit == "bytes":
        return f"{value / (1 << 20):.3g} MiB"
    if unit != "s":
        return f"{value:.3g}"
    for scale, suffix in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {suffix}"
    return f"{value / 1e-9:.3g} ns"


def _range(sample: Sample, unit: str) -> str:
    if sample.low == sample.high:
        return "-"
    return f"{_amount(sample.low, unit)} .. {_amount(sample.high, unit)}"


def _row(figure: Figure) -> tuple[str, ...]:
    unit = figure.unit
    return (
        figure.name,
        _amount(figure.ours.median, unit),
        _amount(figure.baseline.median, unit),
        f"{figure.ratio:.3g}",
        figure.target.text,
        "pass" if figure.passed else "FAIL",
        f"{_range(figure.ours, unit)} | {_range(figure.baseline, unit)}",
    )


def _info_rows(figure: Figure) -> list[tuple[str, ...]]:
    return [
        (f"  {name}", _amount(value, figure.unit if isinstance(value, float) else ""), "", "", "", "info", "")
        for name, value in figure.info.items()
    ]


def table(figures: list[Figure]) -> str:
    rows = [COLUMNS]
    for figure in figures:
        rows.append(_row(figure))
        rows.extend(_info_rows(figure))
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions: a smoke test, not a measurement")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(FIGURES), help="run only these figures")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    figures = []
    for name in options.only or FIGURES:
        started = time.monotonic()
        figures.append(FIGURES[name](options.quick))
        print(f"{name}: done in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    print(table(figures), flush=True)
    if options.json:
        with open(options.json, "w", encoding="utf-8") as out:
            json.dump({figure.name: figure.to_json() for figure in figures}, out, indent=2)
            out.write("\n")
    return 0 if all(figure.passed for figure in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
