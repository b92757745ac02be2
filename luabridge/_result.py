"""What a run hands back to the host: the result object, its JSON form and its text report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

ERROR_TYPES = (
    "syntax", "runtime", "lookup", "validation", "http", "config", "permission",
    "timeout", "instructions", "memory", "output", "calls",
)
# The kernel cuts an error message to 8 KiB and says how much it cut; this bounds what a worker may claim.
MAX_ERROR_MESSAGE = 8192 + 64


@dataclass
class CallRecord:
    """One integration call in the call log. ``ok`` is ``None`` while the call is still in flight."""

    function: str
    account: str
    ok: bool | None = None
    duration_ms: float = 0.0
    http_status: int | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "function": self.function, "account": self.account, "ok": self.ok,
            "duration_ms": round(self.duration_ms, 3), "http_status": self.http_status, "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallRecord:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})


@dataclass(frozen=True)
class RunError:
    """Why a run failed: ``type`` is one of :data:`ERROR_TYPES`."""

    type: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message}


@dataclass
class RunResult:
    """The outcome of :meth:`Bridge.run`.

    ``value`` is the script's return value as JSON-like data (several values as a list, ``None`` if
    none), ``output`` what it printed, ``error`` why it failed (``None`` when ``ok``), ``calls`` the call
    log, ``duration_ms`` the wall time of the run.
    """

    value: Any = None
    output: str = ""
    error: RunError | None = None
    calls: list[CallRecord] = field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """The result object of ``luabridge run --json``."""
        return {
            "ok": self.ok,
            "result": self.value,
            "output": self.output,
            "error": self.error.to_json() if self.error else None,
            "calls": [call.to_json() for call in self.calls],
            "duration_ms": round(self.duration_ms, 3),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResult:
        error = data.get("error")
        return cls(
            value=data.get("result"),
            output=data.get("output", ""),
            error=RunError(error["type"], error["message"]) if error else None,
            calls=[CallRecord.from_json(call) for call in data.get("calls", [])],
            duration_ms=data.get("duration_ms", 0.0),
        )

    def report(self) -> str:
        """The text report agents know from ``execute_lua``; each line only when it applies."""
        lines = []
        if self.output:
            lines.append("Output:")
            lines.append(self.output.rstrip("\n"))
        if self.error:
            lines.append(f"Error: {self.error.message}")
        if self.value is not None:
            lines.append(f"Return value: {json.dumps(self.value, ensure_ascii=False)}")
        lines.append(f"Execution time: {round(self.duration_ms)}ms")
        if self.calls:
            lines.append(f"Integration calls: {len(self.calls)}")
        return "\n".join(lines)
