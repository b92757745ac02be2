"""The host's policy for what a script's calls may do: allow, deny, ask the host each time, or pause the run
for a person's approval (``approve``, see ``docs/writes.md``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._errors import UsageError

Decision = Literal["allow", "deny", "ask", "approve"]
_DECISIONS = ("allow", "deny", "ask", "approve")


@dataclass(frozen=True)
class PermissionRequest:
    """What a host's ``ask`` callback is shown: the call about to be made, before anything is sent."""

    function: str
    account: str
    operation: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Permissions:
    """A decision per operation (``read``, ``write``); ``ask`` is called for operations set to "ask"; a call
    of an operation set to "approve" ends the run as pending, to be approved or rejected later."""

    read: Decision = "allow"
    write: Decision = "allow"
    ask: Callable[[PermissionRequest], bool] | None = None

    def __post_init__(self) -> None:
        for operation in ("read", "write"):
            if getattr(self, operation) not in _DECISIONS:
                raise UsageError(
                    f"permission for {operation!r} must be one of {', '.join(_DECISIONS)}, "
                    f"got {getattr(self, operation)!r}"
                )
        if "ask" in (self.read, self.write) and self.ask is None:
            raise UsageError("a permission set to 'ask' needs an ask callback")

    @classmethod
    def read_only(cls) -> Permissions:
        """Reads allowed, writes denied (``--read-only``)."""
        return cls(write="deny")

    @classmethod
    def approve_writes(cls) -> Permissions:
        """Reads allowed, each write paused for a person's approval (``--approve-writes``)."""
        return cls(write="approve")

    def decision(self, operation: str) -> Decision:
        return self.read if operation == "read" else self.write

    def to_json(self) -> dict[str, str]:
        return {"read": self.read, "write": self.write}
