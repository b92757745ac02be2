"""luabridge: run untrusted Lua snippets in a sandbox whose ``app.integrations.*`` calls real services.

    from luabridge import Bridge
    bridge = Bridge.from_env()
    result = bridge.run('return app.integrations.<name>.<function>({...})')
    result.ok, result.value, result.output, result.error, result.calls
"""

from __future__ import annotations

from ._bridge import Bridge
from ._demo import demo
from ._errors import (
    AccountError,
    ArgumentError,
    CallError,
    ConfigError,
    IntegrationError,
    LimitExceeded,
    LookupFailure,
    LuabridgeError,
    PermissionDenied,
    RemoteError,
    UsageError,
)
from ._limits import DEFAULT_LIMITS, Limits
from ._permissions import PermissionRequest, Permissions
from ._registry import Account, AccountKey, AccountScheme, CallContext, Function, Integration, Secret
from ._result import CallRecord, RunError, RunResult

__version__ = "0.1.0"

__all__ = [
    "Account",
    "AccountError",
    "AccountKey",
    "AccountScheme",
    "ArgumentError",
    "Bridge",
    "CallContext",
    "CallError",
    "CallRecord",
    "ConfigError",
    "DEFAULT_LIMITS",
    "Function",
    "Integration",
    "IntegrationError",
    "LimitExceeded",
    "Limits",
    "LookupFailure",
    "LuabridgeError",
    "PermissionDenied",
    "PermissionRequest",
    "Permissions",
    "RemoteError",
    "RunError",
    "RunResult",
    "Secret",
    "UsageError",
    "__version__",
    "demo",
]
