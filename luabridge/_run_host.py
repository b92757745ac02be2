"""The host side of one run: integration calls, name resolution, docs and captured output.

:class:`ScriptHost` answers what needs no secrets (names and docs); a worker process answers those itself.
:class:`RunHost` adds integration calls, and lives only in the trusted host process: it validates a call's
arguments, applies the permission policy, checks the account and the call limit, calls the integration
with the account's token and keeps the call log in :class:`RunEvents`, so a killed worker loses none of it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from . import _json
from ._catalog import Catalog, Target
from ._config import env_variable
from ._errors import AccountError, ArgumentError, CallError, LimitExceeded, LookupFailure, PermissionDenied
from ._http import redact
from ._ledger import Divergence, PendingCall, RecordedCall, RunPlan, sent_outcome
from ._limits import Limits
from ._namespace import resolve
from ._permissions import PermissionRequest, Permissions
from ._registry import CallContext
from ._result import CallRecord
from ._tracing import enabled as tracing_enabled
from ._tracing import finish_span, start_span

logger = logging.getLogger("luabridge")

MAX_CALL_ERROR = 4096


class RunEvents:
    """What a run reports as it goes, kept in the host: its output (in-process runs), its call log (the effect
    ledger), and, for a run that may pause, each call's arguments and answer (``recorded``) and the write it
    paused at (``pending``). ``plan`` says how the run treats its writes (dry run, replay)."""

    def __init__(self, permissions: Permissions, plan: RunPlan | None = None) -> None:
        self.permissions = permissions
        self.plan = plan or RunPlan()
        self.output: list[str] = []
        self.calls: list[CallRecord] = []
        # Only a run that can pause keeps its answers: a resumed run replays them.
        self.recording = "approve" in (permissions.read, permissions.write)
        self.recorded: list[RecordedCall] = []
        self.pending: PendingCall | None = None
        self.diverged = False

    def printed(self, text: str) -> None:
        self.output.append(text)

    def call_started(self, record: CallRecord) -> None:
        self.calls.append(record)

    def ask(self, request: PermissionRequest, deadline: float) -> bool:
        """The host's ``ask`` callback's answer to ``request``: ``True`` allows the call, ``False`` declines it.

        The callback runs in a thread of its own, so the run's ``deadline`` bounds the wait, not the
        callback. Raises :class:`LimitExceeded` (kind ``timeout``) when it has not answered by ``deadline``
        and :class:`PermissionDenied` when it answers anything but a boolean (``"no"`` is not a yes);
        re-raises what the callback raises.
        """
        ask = self.permissions.ask
        assert ask is not None
        answer: list[Any] = []
        failure: list[BaseException] = []

        def call() -> None:
            try:
                answer.append(ask(request))
            except BaseException as exc:  # handed to the run's thread, which reports it
                failure.append(exc)

        asking = threading.Thread(target=call, name=f"luabridge ask {request.function}", daemon=True)
        asking.start()
        asking.join(max(0.0, deadline - time.monotonic()))
        if asking.is_alive():
            raise LimitExceeded(
                f"{request.function}: the host's ask callback did not answer before the run's time limit; "
                "nothing was sent", kind="timeout",
            )
        if failure:
            raise failure[0]
        if not isinstance(answer[0], bool):
            raise PermissionDenied(
                f"{request.function}: permission denied: the host's ask callback answered a non-boolean "
                f"({type(answer[0]).__name__}), so the call is denied; nothing was sent"
            )
        return answer[0]


class ScriptHost:
    """Answers a run's questions that need no secrets: names and docs (see :class:`luabridge._sandbox.Host`)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def resolve(self, path: str, key: str) -> tuple:
        return resolve(self.catalog, path, key)

    def read_doc(self, page: str | None = None) -> tuple:
        if page is None:
            return ("ok", self.catalog.docs.index())
        try:
            return ("ok", self.catalog.docs.read(page))
        except LookupFailure as exc:
            return ("error", exc.kind, f"lua_read_doc: {exc.message}")

    def list_docs(self, prefix: str | None = None) -> tuple:
        return ("ok", self.catalog.docs.list(prefix))

    def search_docs(self, query: str | None = None) -> tuple:
        if not query:
            return ("error", "runtime", "lua_search_docs: expected a query string, like lua_search_docs(\"agents\")")
        return ("ok", self.catalog.docs.search(query))


class RunHost(ScriptHost):
    """Answers one run's kernel in the host process, integration calls included."""

    def __init__(
        self, catalog: Catalog, *, limits: Limits, permissions: Permissions, events: RunEvents, deadline: float
    ) -> None:
        super().__init__(catalog)
        self.limits = limits
        self.permissions = permissions
        self.events = events
        self.deadline = deadline
        self.calls_made = 0
        self.tracing = tracing_enabled()  # a provider installed during a run traces the next one

    def output(self, text: str) -> None:
        self.events.printed(text)

    def call(
        self, target_id: int, nargs: int, args: Any, colon: bool, encode_error: str | None, room: float
    ) -> tuple:
        """One integration call; ``args`` is the first Lua argument as a dict (a flat table), JSON text, or
        ``None``; ``room`` is the bytes of Lua memory the run has left for the answer.

        The answer is handed back as JSON bytes, and only when its cost fits in ``room``: the call log
        says the call failed when the script did not get its answer. In a resumed run, each call the
        script made before is answered from the record instead (see ``_ledger.py``).
        """
        target = self.catalog.target(target_id)
        if self.calls_made >= self.limits.calls:
            return ("trip", "calls", f"integration call limit of {self.limits.calls} exceeded")
        self.calls_made += 1
        approved: bool | None = None
        replay = self.events.plan.replay
        if replay is not None and not replay.finished:
            try:
                entry = replay.next(target.qualified_name, target.alias, _arguments(args))
            except Divergence as exc:
                self.events.diverged = True
                self.events.call_started(CallRecord(
                    function=target.qualified_name, account=target.alias, ok=False, error=str(exc),
                    effect=target.function.operation, outcome="not_sent",
                ))
                return ("trip", "runtime", str(exc))
            if isinstance(entry, RecordedCall):
                return self._replayed(entry, room)
            approved = replay.approve
        reply = self._call(target, nargs, args, colon, encode_error, room, approved)
        if self.events.recording and self.events.pending is None:
            answer = [reply[0], reply[1].decode("utf-8"), *reply[2:]] if reply[0] == "ok" else list(reply)
            self.events.recorded.append(RecordedCall(
                target.qualified_name, target.alias, _arguments(args), answer, self.events.calls[-1].to_json()))
        return reply

    def _replayed(self, entry: RecordedCall, room: float) -> tuple:
        """A call answered from the record of the run that paused: nothing is sent."""
        self.events.call_started(CallRecord.from_json(entry.record))
        self.events.recorded.append(entry)
        if entry.reply[0] != "ok":
            return tuple(entry.reply)
        data = entry.reply[1].encode("utf-8")
        cost, fixups = _json.measure(data, room)
        if cost > room:
            return ("trip", "memory", f"{entry.function}: the recorded answer would take about {cost} bytes of Lua "
                    f"memory, more than the {max(0, int(room))} bytes left under the memory limit of "
                    f"{self.limits.memory} bytes")
        return ("ok", data, cost, fixups)

    def _call(
        self, target: Target, nargs: int, args: Any, colon: bool, encode_error: str | None, room: float,
        approved: bool | None,
    ) -> tuple:
        record = CallRecord(target.qualified_name, target.alias, effect=target.function.operation, outcome="not_sent")
        self.events.calls.append(record)  # logged before it is sent: a killed worker loses no call
        span = start_span("luabridge.call", {"luabridge.function": target.qualified_name,
                                              "luabridge.account": target.alias,
                                              "luabridge.effect": record.effect}) if self.tracing else None
        started = time.perf_counter()
        ctx = CallContext(target.account, self.deadline, self.limits.memory)
        try:
            if isinstance(args, str):
                args = _json.loads(args)
            data = _json.dumps(self._perform(target, ctx, record, nargs, args, colon, encode_error, approved))
            cost, fixups = _json.measure(data, room)
            if cost > room:
                raise LimitExceeded(
                    f"{target.qualified_name}: the answer ({len(data)} bytes of JSON) would take about {cost} "
                    f"bytes of Lua memory, more than the {max(0, int(room))} bytes left under the memory "
                    f"limit of {self.limits.memory} bytes", kind="memory",
                )
        except _Paused as exc:
            record.ok, record.outcome, record.error = False, "pending", str(exc)
            return ("trip", "approval", str(exc))
        except CallError as exc:
            # A client words what went wrong; which call it was is added here, once, for every integration.
            exc.function, exc.account = target.qualified_name, target.alias
            message = _shorten(_json.repair_text(redact(exc.message, _token(target))))
            # Cut short by the deadline: whether it took effect is not known.
            record.ok = None if isinstance(exc, LimitExceeded) and exc.kind == "timeout" else False
            record.error = message
            if record.outcome == "unknown":  # it was on its way to the service
                record.outcome = sent_outcome(record.effect, ctx.http_status, message)
            if isinstance(exc, LimitExceeded):
                return ("trip", exc.kind, message)
            # The error's facts travel with its words: the script reads them as fields (see _kernel.lua).
            status, code = getattr(exc, "status", None), getattr(exc, "code", None)
            return ("error", exc.kind, message, exc.function, exc.account,
                    status if type(status) is int else None, code if type(code) in (str, int) else None)
        except Exception:
            logger.exception("internal error in %s", target.qualified_name)
            record.ok = False
            record.error = f"{target.qualified_name}: internal error (a bug in the host; details are in its log)"
            if record.outcome == "unknown" and record.effect == "read":
                record.outcome = "failed"  # a write that broke on its way keeps its unknown outcome
            return ("error", "runtime", record.error)
        else:
            record.ok = True
            if record.outcome == "unknown":
                record.outcome = "succeeded"
            return ("ok", data, cost, fixups)  # measured once per answer, here
        finally:
            record.duration_ms = (time.perf_counter() - started) * 1000
            record.http_status = ctx.http_status
            if span is not None:
                finish_span(span, **{"luabridge.outcome": record.outcome,
                                     "http.response.status_code": ctx.http_status})

    def _perform(
        self, target: Target, ctx: CallContext, record: CallRecord, nargs: int, raw: Any, colon: bool,
        encode_error: str | None, approved: bool | None,
    ) -> Any:
        name = target.qualified_name
        if colon:
            raise ArgumentError(
                f"{name}: called with ':' — use a dot: {target.path}({{...}}), not a colon"
            )
        if encode_error:
            raise ArgumentError(f"{name}: the argument cannot be sent: {encode_error}")
        args = target.validator.bind(raw, nargs)
        operation = target.function.operation
        decision = self.permissions.decision(operation)
        if approved is False:
            record.outcome = "denied"
            raise PermissionDenied(f"{name}: permission denied: the write was rejected by its reviewer; "
                                   "nothing was sent")
        if decision == "deny":
            record.outcome = "denied"
            raise PermissionDenied(
                f"{name}: permission denied: the host does not allow {operation} functions; nothing was sent"
            )
        dry_run = self.events.plan.dry_run and operation == "write"
        if decision == "ask" and not dry_run:
            try:
                allowed = self.events.ask(PermissionRequest(name, target.alias, operation, args), self.deadline)
            except PermissionDenied:
                record.outcome = "denied"
                raise
            if not allowed:
                record.outcome = "denied"
                raise PermissionDenied(f"{name}: permission denied: declined by the host; nothing was sent")
        if not ctx.account.configured:
            raise AccountError(_not_configured(target))
        if dry_run:
            record.outcome = "dry_run"
            return {"dry_run": True, "request": _request(target, args)}
        if decision == "approve" and approved is None:
            self.events.pending = PendingCall(name, target.alias, _arguments(raw), _request(target, args))
            raise _Paused(f"{name}: this {operation} needs a person's approval; the run is paused and nothing "
                          "was sent")
        client = self.catalog.client(target.integration, target.alias)
        record.outcome = "unknown"  # from here on it may reach the service
        return target.function.handler(client, args, ctx)


class _Paused(Exception):
    """Raised when a call needs a person's approval: the run ends there, as pending."""


def _arguments(args: Any) -> Any:
    """A call's arguments as JSON data, the form a record keeps and a resumed run compares."""
    if isinstance(args, str):
        try:
            return _json.loads(args)
        except _json.JSONError:
            return args
    return args


def _request(target: Target, args: Any) -> dict[str, Any] | None:
    """The request a write would send, from its function's ``request`` hook (``None`` without one)."""
    describe = target.function.request
    return dict(describe(args)) if describe is not None else None


def _shorten(message: str) -> str:
    """An error message cut to what a script and the call log are handed (it may quote a huge argument)."""
    if len(message) <= MAX_CALL_ERROR:
        return message
    return message[:MAX_CALL_ERROR] + f"... ({len(message) - MAX_CALL_ERROR} more characters)"


def _token(target: Target) -> str | None:
    return target.account.token.reveal() if target.account.token is not None else None


def _not_configured(target: Target) -> str:
    """Advice for an account without a token, naming only the place its settings came from."""
    scheme, account = target.integration.accounts, target.account
    missing = f"{target.qualified_name}: account '{account.alias}' of {target.integration.name} has no token"
    if account.source == "env":
        return (
            f"{missing}; set {env_variable(scheme, account.alias, 'TOKEN')} "
            f"(and {env_variable(scheme, account.alias, 'URL')}), or add it to the accounts file; nothing was sent"
        )
    if account.source == "file":
        return f"{missing}; add 'token' or 'token_env' to {account.token_setting}; nothing was sent"
    return f"{missing}; the host running this script did not give it one; nothing was sent"
