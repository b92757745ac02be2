"""Runs paused at a write that needs approval, kept in an embedded SQLite store until a person decides.

A paused run is stored with what resuming it needs: the script, its limits and permissions, its seed and
start time, every call it made (arguments and answers) and the write it stopped at. No token is ever
stored: accounts are named by alias, and the process that resumes the run uses its own. The store lives
in ``$LUABRIDGE_STATE`` or else the user's state directory (``$XDG_STATE_HOME/luabridge``, by default
``~/.local/state/luabridge``). An approval id is used once: :meth:`ApprovalStore.decide` marks it decided
in the same transaction that checks it is still pending, before anything is sent, so two processes that
approve the same id at once cannot both send its write.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _json
from ._errors import UsageError
from ._ledger import PendingCall, RecordedCall

STATE_VARIABLE = "LUABRIDGE_STATE"
FILE_NAME = "approvals.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,          -- pending, approved or rejected
    created REAL NOT NULL,
    decided REAL,
    run TEXT NOT NULL,            -- the paused run as JSON (PausedRun.to_json)
    result TEXT                   -- the resumed run's result object, once it finished
)
"""


@dataclass(frozen=True)
class PausedRun:
    """What resuming a paused run needs: the script, its limits and permission decisions, the seed and
    clock it ran with, its recorded calls, and the write it paused at."""

    code: str
    limits: dict[str, float]
    permissions: dict[str, str]
    seed: int
    clock: float
    calls: list[RecordedCall]
    pending: PendingCall

    def to_json(self) -> dict[str, Any]:
        pending = self.pending
        return {
            "code": self.code, "limits": self.limits, "permissions": self.permissions, "seed": self.seed,
            "clock": self.clock, "calls": [call.to_json() for call in self.calls],
            "pending": {"function": pending.function, "account": pending.account,
                        "arguments": pending.arguments, "request": pending.request},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PausedRun:
        pending = data["pending"]
        return cls(
            code=data["code"], limits=dict(data["limits"]), permissions=dict(data["permissions"]),
            seed=int(data["seed"]), clock=float(data["clock"]),
            calls=[RecordedCall.from_json(call) for call in data["calls"]],
            pending=PendingCall(pending["function"], pending["account"], pending["arguments"], pending["request"]),
        )


def default_path(environ: dict[str, str] | os._Environ[str] | None = None) -> Path:
    """Where the store lives: ``$LUABRIDGE_STATE``, else ``$XDG_STATE_HOME/luabridge``, else
    ``~/.local/state/luabridge``."""
    environ = os.environ if environ is None else environ
    if environ.get(STATE_VARIABLE):
        return Path(environ[STATE_VARIABLE]) / FILE_NAME
    base = environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "luabridge" / FILE_NAME


class ApprovalStore:
    """Paused runs in a SQLite file (default: :func:`default_path`), shared by every process that opens it."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"cannot open the approvals store {str(self.path)!r}: {exc}") from exc
        return connection

    def save(self, run: PausedRun) -> str:
        """Store ``run`` as pending and return its new approval id."""
        approval_id = "apr_" + secrets.token_hex(8)
        text = _json.dumps(run.to_json()).decode("utf-8")
        with closing(self._connect()) as db:
            db.execute("INSERT INTO approvals (id, state, created, run) VALUES (?, 'pending', ?, ?)",
                       (approval_id, time.time(), text))
        return approval_id

    def decide(self, approval_id: str, *, approve: bool) -> PausedRun:
        """Mark the pending approval ``approval_id`` approved or rejected and return its run, to resume.

        Raises :class:`UsageError` when there is no such approval, or it was already decided (an id is
        used once; what was decided is said).
        """
        state = "approved" if approve else "rejected"
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")  # check and mark in one step: only one decider wins
            row = db.execute("SELECT state, decided, run, result FROM approvals WHERE id = ?",
                             (approval_id,)).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                raise UsageError(f"no pending approval {approval_id!r} in {str(self.path)!r}; nothing was sent")
            if row[0] != "pending":
                db.execute("ROLLBACK")
                raise UsageError(_already_decided(approval_id, row[0], row[1], row[3]))
            db.execute("UPDATE approvals SET state = ?, decided = ? WHERE id = ?", (state, time.time(), approval_id))
            db.execute("COMMIT")
        return PausedRun.from_json(_json.loads(row[2]))

    def finish(self, approval_id: str, result: dict[str, Any]) -> None:
        """Keep the resumed run's result object with its approval, for the record."""
        with closing(self._connect()) as db:
            db.execute("UPDATE approvals SET result = ? WHERE id = ?",
                       (_json.dumps(result).decode("utf-8"), approval_id))

    def get(self, approval_id: str) -> dict[str, Any] | None:
        """The stored approval: its ``state``, its ``run`` and, once resumed, the ``result`` object."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT state, run, result FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        if row is None:
            return None
        return {"id": approval_id, "state": row[0], "run": _json.loads(row[1]),
                "result": _json.loads(row[2]) if row[2] else None}


def _already_decided(approval_id: str, state: str, decided: float | None, result: str | None) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(decided)) if decided else "earlier"
    if result is None and state == "approved":
        what = ("its resumed run did not finish, so the write's outcome is unknown; it is not sent again "
                "(check the service before writing it by hand)")
    else:
        what = "its resumed run finished"
    return f"approval {approval_id!r} was already {state} ({when}) and an approval is used once: {what}; " \
           "nothing was sent"

