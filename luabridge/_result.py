"""What a run hands back to the host: the result object, its JSON form and its text report."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

ERROR_TYPES = (
    "syntax", "runtime", "lookup", "validation", "http", "config", "permission",
    "timeout", "instructions", "memory", "output", "calls", "approval",
)
# The kernel cuts an error message to 8 KiB and says how much it cut; this bounds what a worker may claim.
MAX_ERROR_MESSAGE = 8192 + 64


@dataclass(slots=True)
class CallRecord:
    """One integration call in the call log. ``ok`` is ``None`` while the call is still in flight.

    ``effect`` is ``read`` or ``write``; ``outcome`` is what the call did (see ``_ledger.py``): one of
    ``succeeded``, ``failed``, ``not_sent``, ``unknown``, ``denied``, ``dry_run``, ``pending``.
    """

    function: str
    account: str
    ok: bool | None = None
    duration_ms: float = 0.0
    http_status: int | None = None
    error: str | None = None
    effect: str = "read"
    outcome: str = "unknown"

    def to_json(self) -> dict[str, Any]:
        return {
            "function": self.function, "account": self.account, "ok": self.ok,
            "duration_ms": round(self.duration_ms, 3), "http_status": self.http_status, "error": self.error,
            "effect": self.effect, "outcome": self.outcome,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallRecord:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


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
    log (the effect ledger), ``duration_ms`` the wall time of the run. ``pending`` is the write a run paused
    at (error type ``approval``): its approval ``id``, ``function``, ``account``, ``arguments`` and the
    ``request`` it would send.
    """

    value: Any = None
    output: str = ""
    error: RunError | None = None
    calls: list[CallRecord] = field(default_factory=list)
    duration_ms: float = 0.0
    pending: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def retryable(self) -> bool:
        """Whether running the script again cannot repeat an effect: no write succeeded or has an
        unknown outcome."""
        return not any(call.effect == "write" and call.outcome in ("succeeded", "unknown") for call in self.calls)

    def to_json(self) -> dict[str, Any]:
        """The result object of ``luabridge run --json``."""
        return {
            "ok": self.ok,
            "result": self.value,
            "output": self.output,
            "error": self.error.to_json() if self.error else None,
            "calls": [call.to_json() for call in self.calls],
            "retryable": self.retryable,
            "pending": self.pending,
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
            pending=data.get("pending"),
        )

    def report(self) -> str:
        """The text report agents know from ``execute_lua``; each line only when it applies."""
        lines = []
        if self.output:
            lines.append("Output:")
            lines.append(_unforgeable(self.output.rstrip("\n")))
        if self.error:
            first, newline, rest = self.error.message.partition("\n")  # its first line follows "Error: "
            lines.append(f"Error: {first}{newline}{_unforgeable(rest)}")
        if self.value is not None:
            lines.append(f"Return value: {json.dumps(self.value, ensure_ascii=False)}")
        lines.append(f"Execution time: {round(self.duration_ms)}ms")
        if self.calls:
            lines.append(f"Integration calls: {len(self.calls)}")
            # The ledger, once a run touched a write: what each call did, so no one repeats a write blindly.
            if any(call.effect == "write" for call in self.calls):
                lines.extend(f"  {call.function} [{call.account}]: {call.effect}, {call.outcome}"
                             for call in self.calls)
                if not self.retryable:
                    lines.append("Retryable: no (a write took effect or may have; running it again could repeat it)")
        if self.pending:
            lines.append(f"Pending approval: {self.pending['id']} (luabridge approve {self.pending['id']} "
                         f"or luabridge reject {self.pending['id']})")
        return "\n".join(lines)


# A line a script's text could make look like one of the report's own (a label, or a ledger entry).
_REPORT_LINE = re.compile(
    r"(?:Output|Error|Return value|Execution time|Integration calls|Retryable|Pending approval):"
    r"|\s+\S+ \[[^\]]*\]: (?:read|write), "
)


def _unforgeable(text: str) -> str:
    """``text`` with every line that could pass for a report line quoted with ``> ``: what a script
    prints or raises must never read as the host's word (a return value, a call, an approval)."""
    if not _REPORT_LINE.search(text):
        return text
    return "\n".join(f"> {line}" if _REPORT_LINE.match(line) else line for line in text.split("\n"))
