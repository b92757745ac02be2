"""The limits a run is held to: defaults, per-run overrides, and the host's ceilings."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from ._errors import UsageError

MiB = 1024 * 1024
KiB = 1024


@dataclass(frozen=True)
class Limits:
    """What one run may use. Each limit, when exceeded, ends the run with its own error type.

    ``timeout`` is wall-clock seconds (``timeout``), ``instructions`` counts Lua VM instructions
    (``instructions``), ``memory`` is bytes of Lua memory (``memory``), ``output`` is bytes printed
    (``output``), ``calls`` is integration calls (``calls``), ``result`` is bytes of the returned value as
    JSON (``output``).
    """

    timeout: float = 30.0
    instructions: int = 200_000_000
    memory: int = 32 * MiB
    output: int = 64 * KiB
    calls: int = 100
    result: int = 1 * MiB

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UsageError(f"limit {field.name!r} must be a number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise UsageError(f"limit {field.name!r} must be a positive number, got {value!r}")
            if field.name != "timeout" and value != int(value):
                raise UsageError(f"limit {field.name!r} must be a whole number, got {value!r}")
        for name in ("instructions", "memory", "output", "calls", "result"):
            object.__setattr__(self, name, int(getattr(self, name)))

    def with_overrides(self, overrides: Limits | Mapping[str, Any] | None) -> Limits:
        """Return these limits with ``overrides`` applied; unknown names raise :class:`UsageError`."""
        if overrides is None:
            return self
        if isinstance(overrides, Limits):
            return overrides
        unknown = set(overrides) - {f.name for f in fields(self)}
        if unknown:
            known = ", ".join(f.name for f in fields(self))
            raise UsageError(f"unknown limit {sorted(unknown)[0]!r}; limits are: {known}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def check_within(self, ceilings: Limits) -> None:
        """Raise :class:`UsageError` when any limit is above the host's ceiling for it."""
        for field in fields(self):
            value, ceiling = getattr(self, field.name), getattr(ceilings, field.name)
            if value > ceiling:
                raise UsageError(
                    f"limit {field.name!r} of {value:g} is above the host's ceiling of {ceiling:g}"
                )

    def clamped_to(self, ceilings: Limits) -> Limits:
        """Return these limits lowered to ``ceilings`` where they are above them."""
        return replace(self, **{f.name: min(getattr(self, f.name), getattr(ceilings, f.name)) for f in fields(self)})

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)  # the fields, and only them: a plain frozen dataclass


DEFAULT_LIMITS = Limits()

# How each limit is raised, for the second line of the error that reports it: the name in ``limits={...}``
# (Python), the CLI flag and the MCP ``execute_lua`` argument where there are some.
_SETTINGS = {
    "timeout": 'limits={"timeout": SECONDS} in Python, --timeout SECONDS on the command line, or the timeout '
               "argument of execute_lua (MCP)",
    "instructions": 'limits={"instructions": N} in Python (the command line and MCP have no setting for it)',
    "memory": 'limits={"memory": BYTES} in Python, --memory MB on the command line, or the memory_mb argument of '
              "execute_lua (MCP)",
    "calls": 'limits={"calls": N} in Python, --max-calls N on the command line, or the max_calls argument of '
             "execute_lua (MCP)",
    "output": 'limits={"output": BYTES} in Python',
    "result": 'limits={"result": BYTES} in Python',
}


def limit_advice(kind: str, message: str, limits: Limits, *, elapsed: float | None = None) -> str:
    """The second line of a limit error: which limit it was and how the host raises it (up to its ceiling).

    ``message`` is the first line, as the run reported it; ``elapsed`` is how long the run had taken, which
    says when the instruction limit stopped a run well before its time limit.
    """
    if kind == "output" and message.startswith("returned value"):
        return ("The returned value is too large: return a summary (counts, ids, the first items) instead, or "
                f"raise the limit with {_SETTINGS['result']}, up to the host's ceiling.")
    if kind == "output":
        return f"Print less (return the data instead), or raise the limit with {_SETTINGS['output']}."
    setting = _SETTINGS.get(kind)
    if setting is None:
        return ""
    advice = f"To allow more, set {setting}, up to the host's ceiling."
    if kind == "instructions" and elapsed is not None and elapsed < limits.timeout:
        advice = (f"The run executed {limits.instructions} Lua instructions in {elapsed:.1f} s, before its time "
                  f"limit of {limits.timeout:g} s: a loop that never ends? " + advice)
    return advice


def with_limit_advice(kind: str, message: str, limits: Limits, *, elapsed: float | None = None) -> str:
    """``message`` with :func:`limit_advice` on a line of its own (the first line stays as it was)."""
    advice = limit_advice(kind, message, limits, elapsed=elapsed)
    return f"{message}\n{advice}" if advice else message

# Ceilings a host gets unless it sets its own: generous, but finite.
DEFAULT_CEILINGS = Limits(
    timeout=600.0, instructions=10_000_000_000, memory=1024 * MiB, output=16 * MiB, calls=10_000,
    result=64 * MiB,
)
