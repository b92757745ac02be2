"""The one exception tree of luabridge.

Three kinds of failure are kept apart: the host's misuse (bad limits, bad accounts file), the script's
fault (bad argument, unknown name, limit reached) and the remote's fault (HTTP status, bad body)::

    LuabridgeError
    ├── UsageError              the host called luabridge wrongly (invalid limit, missing script file)
    ├── ConfigError             the accounts configuration is wrong or incomplete
    └── CallError               one integration call failed; ``kind`` is the run's error type
        ├── LookupFailure       unknown function, account or doc page              (kind "lookup")
        ├── ArgumentError       arguments did not match the function's schema        (kind "validation")
        ├── PermissionDenied    the host's policy refused the operation              (kind "permission")
        ├── AccountError        the account is not configured or is misconfigured    (kind "config")
        ├── RemoteError         the remote service failed or could not be reached    (kind "http")
        └── LimitExceeded       host work for a call hit one of the run's limits     (kind "memory", "timeout")

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


class CallError(LuabridgeError):
    """An integration call failed in a way the script may catch with ``pcall``.

    ``kind`` is the error type reported in the run result (see ``docs/errors.md``).
    """

    kind = "runtime"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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

    ``status`` is the HTTP status when there was a response, else ``None``.
    """

    kind = "http"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LimitExceeded(CallError):
    """Raised when host work for a call would pass one of the run's limits: an answer larger than the
    run's memory allows, or the run's deadline reached mid-request.

    Like every limit, it ends the run (a script cannot catch it); ``kind`` is ``"memory"`` or ``"timeout"``.
    """

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind
