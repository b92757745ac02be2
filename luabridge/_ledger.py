"""The effect ledger: what each call did to the world, and how a resumed run replays what it did before.

Every call record says its ``effect`` (the function's operation, ``read`` or ``write``) and its ``outcome``:

- ``succeeded``: the service answered with a 2xx status (even if the script did not get the answer);
- ``failed``: the call was sent and the service refused it, or a read broke on the way;
- ``not_sent``: refused before anything left the host (bad arguments, no account, no time left);
- ``unknown``: a write that may have reached the service (a timeout or a dropped connection after sending,
  or a call still in flight when its run was stopped);
- ``denied``: the permission policy or the host refused it; nothing was sent;
- ``dry_run``: a write in a dry run, answered with the request it would have sent;
- ``pending``: a write waiting for a person's approval; nothing was sent.

A run is retryable until one of its writes succeeded or has an unknown outcome: running it again could
then repeat an effect. A resumed run (:class:`Replay`) answers each call its script made before from the
record and sends only the approved write, once; a script that does not repeat its record is stopped.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from . import _json
from ._http import OUTCOME_UNKNOWN

EFFECTS = ("read", "write")
OUTCOMES = ("succeeded", "failed", "not_sent", "unknown", "denied", "dry_run", "pending")
# The outcomes after which running the same script again could repeat an effect.
UNREPEATABLE = ("succeeded", "unknown")


def sent_outcome(effect: str, http_status: int | None, message: str | None) -> str:
    """The outcome of a call that went out to its service: ``message`` is its error (``None``: none)."""
    if http_status is not None and 200 <= http_status < 300:
        return "succeeded"  # the service took it, whatever became of the answer afterwards
    if message is None:
        return "succeeded"
    if http_status is not None:
        return "failed"
    if effect == "write" and OUTCOME_UNKNOWN in message:
        return "unknown"
    return "failed" if effect == "read" else "not_sent"


@dataclass(frozen=True)
class RecordedCall:
    """One call of a paused run as a resumed run replays it: its name, account and arguments (as JSON
    data), the kernel reply it got (the answer's JSON as text) and its call log record."""

    function: str
    account: str
    arguments: Any
    reply: list[Any]
    record: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"function": self.function, "account": self.account, "arguments": self.arguments,
                "reply": self.reply, "record": self.record}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecordedCall:
        return cls(data["function"], data["account"], data["arguments"], list(data["reply"]), dict(data["record"]))


@dataclass(frozen=True)
class PendingCall:
    """The write a paused run stopped at: what a person approves or rejects."""

    function: str
    account: str
    arguments: Any
    request: dict[str, Any] | None


class Divergence(Exception):
    """Raised when a resumed script's call is not the one its record holds at that place."""


def describe_call(function: str, account: str, arguments: Any) -> str:
    """A call as an error message names it: function, account and (the start of) its arguments."""
    shown = _json.dumps(arguments).decode("utf-8") if arguments is not None else "no arguments"
    if len(shown) > 200:
        shown = shown[:200] + "..."
    return f"{function} (account {account}) with {shown}"


@dataclass
class Replay:
    """What a resumed run answers from its record: the earlier ``calls`` in order, then the ``pending``
    write, which is sent when ``approve`` is true and refused as a permission error otherwise."""

    calls: list[RecordedCall]
    pending: PendingCall
    approve: bool
    position: int = 0

    @property
    def finished(self) -> bool:
        """Whether the script has reached the pending write (everything after it runs normally)."""
        return self.position > len(self.calls)

    def next(self, function: str, account: str, arguments: Any) -> RecordedCall | PendingCall:
        """The record's entry for the script's next call. Raises :class:`Divergence` when the call is not
        the recorded one (another function, account or arguments)."""
        index = self.position
        expected = self.calls[index] if index < len(self.calls) else self.pending
        # Arguments compare as canonical JSON: in Python True == 1 == 1.0, and a write must not be sent with
        # {x = true} where {x = 1} was approved.
        if (expected.function, expected.account, _canonical(expected.arguments)) != (
                function, account, _canonical(arguments)):
            what = "the write waiting for approval" if expected is self.pending else f"call {index + 1}"
            raise Divergence(
                f"the resumed script did not repeat its recorded calls: {what} was "
                f"{describe_call(expected.function, expected.account, expected.arguments)}, but now it is "
                f"{describe_call(function, account, arguments)}; the run was stopped and nothing was sent "
                "(a script that reads the clock or randomness in other ways than os.time, os.date and "
                "math.random cannot be resumed)"
            )
        self.position += 1
        return expected


@dataclass
class RunPlan:
    """How one run treats its writes, and what makes it repeatable: ``seed`` seeds ``math.random`` and
    ``clock`` is the Unix time ``os.time()`` and ``os.date()`` report, so a resumed run sees what the
    paused one saw."""

    dry_run: bool = False
    replay: Replay | None = None
    seed: int = field(default_factory=lambda: secrets.randbits(62))
    clock: float = field(default_factory=time.time)


def _canonical(arguments: Any) -> str:
    return json.dumps(arguments, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
