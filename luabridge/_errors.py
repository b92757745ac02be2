"""The one exception tree of luabridge.

Three kinds of failure are kept apart: the host's misuse (bad limits, bad accounts file), the script's
fault (bad argument, unknown name, limit reached) and the remote's fault (HTTP status, bad body)::

    LuabridgeError
    ├── UsageError              the host called luabridge wrongly (invalid limit, missing script file)
    ├── ConfigError             the accounts configuration is wrong or incomplete
    ├── IntegrationError        an integration's definition or its use of the toolkit is broken
    └── CallError               one integration call failed; ``kind`` is the run's error type
        ├── LookupFailure       unknown function, account or doc page              (kind "lookup")
        ├── ArgumentError       arguments did not match the function's schema        (kind "validation")
        ├── PermissionDenied    the host's policy refused the operation              (kind "permission")
        ├── AccountError        the account is not configured or is misconfigured    (kind "config")
        ├── RemoteError         the remote service failed or could not be reached    (kind "http")
        └── LimitExceeded       host work for a call hit one of the run's limits     (kind "memory", "timeout")

A :class:`CallError` is a record first: ``cause`` says what went wrong, ``function`` and ``account`` say
where, and ``message`` words them once. A client raises it with ``cause`` alone; the bridge fills in the
function's qualified name and the account, so no integration prefixes its own messages.

Foreign exceptions (requests, jsonschema, lupa) are translated into these once, at one boundary, with the
original kept as ``__cause__``. Anything else raised by an integration is a bug in the host, not the
script's fault; the bridge logs it and reports it to the script as an internal error.
"""

from __future__ import annotations


class LuabridgeError(Exception):
    """Base of every error luabridge raises on purpose."""


class UsageError(LuabridgeError, ValueError):
    """Raised when the host passes invalid input: a bad limit, a missing or unreadable script."""


class ConfigError(LuabridgeError):
    """Raised when the accounts configuration (environment or file) is invalid."""


class IntegrationError(LuabridgeError):
    """Raised when an integration is defined or built wrongly: a toolkit option of the wrong kind, a
    client handed a call for another account. A bug to fix in the integration, not the script's fault."""


class CallError(LuabridgeError):
    """An integration call failed in a way the script may catch with ``pcall``.

    ``cause`` is what went wrong, in words (``HTTP 404 NOT_FOUND: agent not found``); ``function`` (the
    qualified name, ``service.get_item``) and ``account`` (its alias) say which call it was, ``None`` until
    the bridge fills them in. ``kind`` is the error type reported in the run result (see ``docs/errors.md``).
    """

    kind = "runtime"

    def __init__(self, cause: str, *, function: str | None = None, account: str | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.function = function
        self.account = account

    @property
    def message(self) -> str:
        """The error as a script reads it: ``<function>: <cause>``, or the cause alone while no function is
        known. A cause the bridge worded itself already opens with the function's name and keeps it once."""
        if self.function is None or self.cause.startswith(self.function):
            return self.cause
        return f"{self.function}: {self.cause}"

    def __str__(self) -> str:
        return self.message


class LookupFailure(CallError):
    """Raised for an unknown function, account or documentation page."""

    kind = "lookup"


class ArgumentError(CallError):
    """Raised when a call's arguments do not match the function's schema; nothing was sent."""

    kind = "validation"


class PermissionDenied(CallError):
    """Raised when the host's permission policy refuses a read or write; nothing was sent."""

    kind = "permission"


class AccountError(CallError):
    """Raised when a call names an account that is not configured; nothing was sent."""

    kind = "config"


class RemoteError(CallError):
    """Raised when the remote service answered with an error or could not be reached.

    ``status`` is the HTTP status when there was a response, else ``None``; ``code`` is the service's own
    error code or enum (``NOT_FOUND``) when its answer named one.
    """

    kind = "http"

    def __init__(
        self, cause: str, *, status: int | None = None, code: str | None = None,
        function: str | None = None, account: str | None = None,
    ) -> None:
        super().__init__(cause, function=function, account=account)
        self.status = status
        self.code = code


class LimitExceeded(CallError):
    """Raised when host work for a call would pass one of the run's limits: an answer larger than the
    run's memory allows, or the run's deadline reached mid-request.

    Like every limit, it ends the run (a script cannot catch it); ``kind`` is ``"memory"`` or ``"timeout"``.
    """

    def __init__(
        self, cause: str, *, kind: str, function: str | None = None, account: str | None = None
    ) -> None:
        super().__init__(cause, function=function, account=account)
        self.kind = kind
