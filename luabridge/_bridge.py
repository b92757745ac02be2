"""The host API: :class:`Bridge` runs scripts and returns :class:`RunResult` objects."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ._calls import RunEvents, RunHost
from ._catalog import Catalog
from ._config import load_accounts
from ._discovery import discover_integrations, unique_by_name
from ._errors import UsageError
from ._limits import DEFAULT_CEILINGS, DEFAULT_LIMITS, Limits
from ._permissions import Permissions
from ._pool import WorkerPool
from ._protocol import Init
from ._registry import Account, Integration, load_integration
from ._result import RunError, RunResult
from ._sandbox import run_script


def execute_run(catalog: Catalog, code: str, *, limits: Limits, permissions: Permissions, started: float) -> RunResult:
    """Run ``code`` in this process and collect its result."""
    deadline = started + limits.timeout
    events = RunEvents(permissions)
    host = RunHost(catalog, limits=limits, permissions=permissions, events=events, deadline=deadline)
    outcome = run_script(code, host=host, limits=limits, deadline=deadline)
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


def check_code(code: Any) -> str:
    """Return ``code`` as text, or raise :class:`UsageError` for a script that cannot be run."""
    if isinstance(code, bytes):
        try:
            code = code.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"the script is not valid UTF-8 (byte {exc.start})") from exc
    if not isinstance(code, str):
        raise UsageError(f"the script must be text, got {type(code).__name__}")
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
    ) -> None:
        loaded = _load(integrations)
        self.catalog = Catalog(loaded, accounts or {})
        self.ceilings = DEFAULT_CEILINGS.with_overrides(ceilings)
        self.limits = DEFAULT_LIMITS.clamped_to(self.ceilings).with_overrides(limits)
        self.limits.check_within(self.ceilings)
        self.permissions = permissions or Permissions()
        self.isolation = isolation
        self._max_workers = max_workers
        self._integrations = loaded
        self._pool: WorkerPool | None = None
        self._pool_lock = threading.Lock()

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
    ) -> RunResult:
        """Run ``code`` in a fresh sandbox and return its result; a script's failure is in ``result.error``.

        Raises :class:`UsageError` for an empty or non-text script or invalid limits.
        """
        started = time.monotonic()
        code = check_code(code)
        run_limits = self.limits.with_overrides(limits)
        if run_limits is not self.limits:  # the bridge's own limits were checked when it was made
            run_limits.check_within(self.ceilings)
        run_permissions = permissions or self.permissions
        if not (self.isolation if in_process is None else not in_process):
            return execute_run(self.catalog, code, limits=run_limits, permissions=run_permissions, started=started)
        return self._workers().run(code, limits=run_limits, permissions=run_permissions, started=started)

    def prestart(self, workers: int = 1) -> None:
        """Start ``workers`` worker processes now, so that the next runs do not wait for one to start."""
        self._workers().prestart(workers)

    def _workers(self) -> WorkerPool:
        with self._pool_lock:  # concurrent first runs must share one pool
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
            pool, self._pool = self._pool, None
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
