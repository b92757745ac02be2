"""The host API: :class:`Bridge` runs scripts and returns :class:`RunResult` objects."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from . import _json
from ._approvals import ApprovalStore, PausedRun
from ._catalog import Catalog
from ._config import load_accounts, normalize_account_url
from ._discovery import discover_integrations, unique_by_name
from ._errors import UsageError
from ._ledger import Replay, RunPlan, describe_call
from ._limits import DEFAULT_CEILINGS, DEFAULT_LIMITS, Limits
from ._permissions import Permissions
from ._pool import WorkerPool
from ._protocol import Init
from ._registry import Account, AccountScheme, Integration, Secret, load_integration
from ._result import RunError, RunResult
from ._run_host import RunEvents, RunHost
from ._sandbox import PreparedRun
from ._suggest import did_you_mean


def execute_run(
    catalog: Catalog, code: str, *, limits: Limits, events: RunEvents, started: float, prepared: PreparedRun
) -> RunResult:
    """Run ``code`` in this process, in ``prepared``, as ``events`` plans it (permissions, dry run, replay)
    and collect its result."""
    deadline = started + limits.timeout
    host = RunHost(catalog, limits=limits, permissions=events.permissions, events=events, deadline=deadline)
    plan = events.plan
    outcome = prepared.run(code, host=host, limits=limits, deadline=deadline, seed=plan.seed, clock=plan.clock)
    return RunResult(
        value=outcome.value,
        output="".join(events.output),
        error=None if outcome.ok else RunError(outcome.error_type, outcome.error_message),
        calls=events.calls,
        duration_ms=(time.monotonic() - started) * 1000,
    )


def _load(integrations: Sequence[str | Integration] | None) -> list[Integration]:
    if integrations is None:
        return discover_integrations()
    return unique_by_name(load_integration(item) if isinstance(item, str) else item for item in integrations)


def check_accounts(
    accounts: Mapping[str, Mapping[str, Account]] | None, integrations: Sequence[Integration]
) -> dict[str, dict[str, Account]]:
    """Return the host's ``accounts`` with each URL normalised by its integration's scheme, as the accounts
    file and the environment are.

    Raises :class:`UsageError` when ``accounts`` is not a mapping of integration name -> alias ->
    :class:`Account`, names an integration the bridge does not have, files an account under another
    alias or integration than its own, or holds a token or secret setting as plain text, or a setting
    its scheme does not declare; :class:`ConfigError` when the scheme refuses a URL.
    """
    if accounts is None:
        return {}
    by_name = {integration.name: integration for integration in integrations}
    if not isinstance(accounts, Mapping):
        raise UsageError(
            f"accounts must map integration name -> alias -> Account, such as {{'<name>': {{'default': "
            f"Account(...)}}}}, not a {type(accounts).__name__}"
        )
    checked: dict[str, dict[str, Account]] = {}
    for name, by_alias in accounts.items():
        if name not in by_name:
            raise UsageError(
                f"accounts name an unknown integration {name!r};"
                f"{did_you_mean(str(name), by_name, phrase=' did you mean {}?')} "
                f"integrations: {', '.join(sorted(by_name)) or 'none'}"
            )
        if not isinstance(by_alias, Mapping):
            raise UsageError(f"accounts[{name!r}] must map alias -> Account, not a {type(by_alias).__name__}")
        scheme = by_name[name].accounts
        checked[name] = {
            alias: _checked_account(scheme, name, alias, account) for alias, account in by_alias.items()
        }
    return checked


def _checked_account(scheme: AccountScheme, name: str, alias: str, account: Any) -> Account:
    where = f"accounts[{name!r}][{alias!r}]"
    if not isinstance(account, Account):
        raise UsageError(f"{where} must be a luabridge.Account, not a {type(account).__name__}")
    if (account.integration, account.alias) != (name, alias):
        raise UsageError(
            f"{where} holds the account {account.integration}.{account.alias}; file each account under its own "
            "integration and alias"
        )
    valid = [key.name for key in scheme.keys if key.name not in ("url", "token")]
    for key in account.settings:
        if key not in valid:
            raise UsageError(
                f"{where}: unknown setting {key!r};{did_you_mean(key, valid, phrase=' did you mean {}?')} "
                f"settings of {name}: {', '.join(valid) or 'none'}"
            )
    secrets = {"token": account.token, **account.settings}
    for key, value in secrets.items():
        if _is_secret(scheme, key) and value is not None and not isinstance(value, Secret):
            raise UsageError(
                f"{where}: the {key} must be a luabridge.Secret, such as Secret(os.environ[...]), not a plain "
                f"{type(value).__name__}, so that it never shows in a repr or a log"
            )
    tokens = [value.reveal() for value in secrets.values() if isinstance(value, Secret)]
    url = normalize_account_url(scheme, account.url, where=f"{where} url", secrets=tokens)
    return account if url == account.url else replace(account, url=url)


def _is_secret(scheme: AccountScheme, name: str) -> bool:
    key = scheme.key(name)
    return key is not None and key.secret


def check_code(code: Any) -> str:
    """Return ``code`` as text, or raise :class:`UsageError` for a script that cannot be run."""
    if isinstance(code, bytes):
        try:
            code = code.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"the script is not valid UTF-8 (byte {exc.start})") from exc
    if not isinstance(code, str):
        raise UsageError(f"the script must be text, got {type(code).__name__}")
    # A lone surrogate (JSON's "\ud800" decodes to one, from a service or MCP client) is text Python holds
    # but UTF-8, and so Lua, cannot carry.
    lone = _json.lone_surrogate(code)
    if lone is not None:
        raise UsageError(f"the script is not valid Unicode: a lone surrogate at character {lone}")
    if not code.strip():
        raise UsageError("the script is empty")
    return code


class Bridge:
    """Runs Lua scripts in a sandbox where ``app.integrations.*`` reaches the configured accounts.

    ``accounts`` maps integration name -> alias -> :class:`Account` (see :meth:`from_env`).
    ``integrations`` are module names or :class:`Integration` objects (default: every discovered one, see
    ``_discovery.py``).
    ``limits`` are the defaults of each run; ``ceilings`` are what per-run overrides may not pass.
    By default each run executes in a worker process that is killed at the deadline; with
    ``isolation=False`` runs execute in this process, where one long C call can outlive the time limit.
    ``approvals`` is where runs paused for approval are kept (a path or an :class:`ApprovalStore`; default:
    ``$LUABRIDGE_STATE`` or the user's state directory, see docs/writes.md).
    """

    def __init__(
        self,
        accounts: Mapping[str, Mapping[str, Account]] | None = None,
        *,
        integrations: Sequence[str | Integration] | None = None,
        limits: Limits | Mapping[str, Any] | None = None,
        ceilings: Limits | Mapping[str, Any] | None = None,
        permissions: Permissions | None = None,
        isolation: bool = True,
        max_workers: int = 8,
        approvals: ApprovalStore | str | os.PathLike[str] | None = None,
    ) -> None:
        loaded = _load(integrations)
        self.catalog = Catalog(loaded, check_accounts(accounts, loaded))
        self.ceilings = DEFAULT_CEILINGS.with_overrides(ceilings)
        self.limits = DEFAULT_LIMITS.clamped_to(self.ceilings).with_overrides(limits)
        self.limits.check_within(self.ceilings)
        self.permissions = permissions or Permissions()
        self.isolation = isolation
        self._max_workers = max_workers
        self._integrations = loaded
        self._pool: WorkerPool | None = None
        self._pool_lock = threading.Lock()
        self._closed = False
        self._approvals = approvals if isinstance(approvals, ApprovalStore) else ApprovalStore(approvals)

    @classmethod
    def from_env(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        config_path: str | os.PathLike[str] | None = None,
        integrations: Sequence[str | Integration] | None = None,
        **options: Any,
    ) -> Bridge:
        """A bridge whose accounts come from the environment and the accounts file (see docs/accounts.md)."""
        loaded = _load(integrations)
        accounts = load_accounts(loaded, environ=os.environ if environ is None else environ, config_path=config_path)
        return cls(accounts, integrations=loaded, **options)

    @property
    def docs(self):
        """The documentation set scripts read with ``lua_read_doc``."""
        return self.catalog.docs

    def run(
        self,
        code: str,
        *,
        limits: Limits | Mapping[str, Any] | None = None,
        permissions: Permissions | None = None,
        in_process: bool | None = None,
        dry_run: bool = False,
    ) -> RunResult:
        """Run ``code`` in a fresh sandbox and return its result; a script's failure is in ``result.error``.

        With ``dry_run``, reads are sent and each write is checked and answered with the request it would
        send, not sent. A write that ``permissions`` set to "approve" ends the run as pending (error type
        ``approval``, ``result.pending``), to be finished with :meth:`resume`.
        Raises :class:`UsageError` for an empty or non-text script, invalid limits, or a closed bridge.
        """
        started = time.monotonic()
        self._check_open()
        code = check_code(code)
        run_limits = self.limits.with_overrides(limits)
        if run_limits is not self.limits:  # the bridge's own limits were checked when it was made
            run_limits.check_within(self.ceilings)
        events = RunEvents(permissions or self.permissions, RunPlan(dry_run=dry_run))
        return self._execute(code, run_limits, events, in_process, started)

    def resume(self, approval_id: str, *, approve: bool, in_process: bool | None = None) -> RunResult:
        """Finish the run paused at approval ``approval_id``: re-run its script with every call it made
        before answered from the record (nothing is sent again), then send the write once when ``approve``
        is true, or make it a permission error the script can catch when false. Works from any process
        that has the same accounts and approvals store.

        Raises :class:`UsageError` for an unknown id or one already approved or rejected (an id is used
        once: nothing is sent), or a closed bridge.
        """
        started = time.monotonic()
        self._check_open()
        paused = self._approvals.decide(approval_id, approve=approve)
        decisions = paused.permissions
        permissions = Permissions(read=decisions["read"], write=decisions["write"], ask=self.permissions.ask)
        plan = RunPlan(replay=Replay(paused.calls, paused.pending, approve), seed=paused.seed, clock=paused.clock)
        result = self._execute(paused.code, Limits(**paused.limits), RunEvents(permissions, plan), in_process,
                               started)
        self._approvals.finish(approval_id, result.to_json())
        return result

    def _execute(
        self, code: str, limits: Limits, events: RunEvents, in_process: bool | None, started: float
    ) -> RunResult:
        if not (self.isolation if in_process is None else not in_process):
            result = execute_run(self.catalog, code, limits=limits, events=events, started=started,
                                 prepared=PreparedRun())
        else:
            result = self._workers().run(code, limits=limits, events=events, started=started)
        return self._settled(result, code, limits, events)

    def _settled(self, result: RunResult, code: str, limits: Limits, events: RunEvents) -> RunResult:
        """``result`` with its pause stored (the approval id in ``pending``), or failed when a resumed
        script ended before it reached the write it was resumed for."""
        replay = events.plan.replay
        if replay is not None and not replay.finished and not events.diverged:
            pending = replay.pending
            ended = f" (it ended with: {result.error.message})" if result.error else ""
            result.value, result.error = None, RunError("runtime", (
                "the resumed script ended before it made the write waiting for approval, "
                f"{describe_call(pending.function, pending.account, pending.arguments)}; nothing was sent{ended}"))
        if events.pending is not None and result.error is not None and result.error.type == "approval":
            pending = events.pending
            paused = PausedRun(
                code=code, limits=limits.to_dict(), permissions=events.permissions.to_json(),
                seed=events.plan.seed, clock=events.plan.clock, calls=events.recorded, pending=pending,
            )
            approval_id = self._approvals.save(paused)
            result.pending = {"id": approval_id, "function": pending.function, "account": pending.account,
                              "arguments": pending.arguments, "request": pending.request}
            result.error = RunError("approval", f"{result.error.message}; approval {approval_id} is waiting")
        return result

    def prestart(self, workers: int = 1) -> None:
        """Start worker processes now until ``workers`` are waiting, so that the next runs do not wait for
        one to start. Raises :class:`UsageError` for a closed bridge."""
        self._check_open()
        self._workers().prestart(workers)

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError("this bridge is closed; create a new one to run scripts")

    def _workers(self) -> WorkerPool:
        with self._pool_lock:  # concurrent first runs must share one pool
            self._check_open()  # a run that raced close() must not start a new pool
            if self._pool is None:
                self._pool = WorkerPool(self.catalog, self._worker_init(), max_workers=self._max_workers)
            return self._pool

    def _worker_init(self) -> Init:
        """What a worker is told: where to import from, which integrations, and the account aliases.
        Never a token: the worker asks this process to perform every call."""
        modules = []
        for integration in self._integrations:
            if integration.module is None:
                raise UsageError(
                    f"integration {integration.name!r} was given as an object; a worker process can only "
                    "load integrations by module name (pass its module name, or run in-process)"
                )
            modules.append(integration.module)
        aliases = {name: sorted(accounts) for name, accounts in self.catalog.accounts.items()}
        return Init(sys_path=list(sys.path), integrations=modules, aliases=aliases)

    def close(self) -> None:
        """Stop the worker processes and close the integrations' HTTP sessions."""
        with self._pool_lock:
            pool, self._pool, self._closed = self._pool, None, True
        if pool is not None:
            pool.close()
        self.catalog.close()

    def __enter__(self) -> Bridge:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        accounts = {name: sorted(aliases) for name, aliases in self.catalog.accounts.items()}
        mode = "worker processes" if self.isolation else "in-process"
        return f"<Bridge accounts={accounts} {mode}>"
