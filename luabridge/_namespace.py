"""Name resolution for ``app.integrations.<name>[.<account>].<function>``.

The kernel asks, the first time a script indexes a namespace table, what ``path.key`` is: another
namespace, a function bound to an account, or a lookup error that lists what exists. The answer is cached
in the table, so each name is resolved once per run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._catalog import Catalog
from ._errors import LookupFailure
from ._suggest import did_you_mean

_ROOT = "app"
_INTEGRATIONS = "app.integrations"


def _did_you_mean(name: str, options: Iterable[str]) -> str:
    return did_you_mean(name, options, limit=3, phrase=" Did you mean: {}?", spell=str)


def resolve(catalog: Catalog, path: str, key: Any) -> tuple:
    """Answer the kernel's question "what is ``path.key``?" with a kernel reply tuple."""
    try:
        return _resolve(catalog, path, key)
    except LookupFailure as exc:
        return ("error", exc.kind, exc.message)


def _resolve(catalog: Catalog, path: str, key: Any) -> tuple:
    if not isinstance(key, str):
        raise LookupFailure(f"{path} has no field [{key!r}]: its fields are names (strings)")
    if path == _ROOT:
        if key == "integrations":
            return ("namespace", _INTEGRATIONS)
        raise LookupFailure(f"Unknown name: {_ROOT}.{key}. {_ROOT} has: integrations")
    if path == _INTEGRATIONS:
        if key in catalog.integrations:
            return ("namespace", f"{path}.{key}")
        names = sorted(catalog.integrations)
        raise LookupFailure(
            f"Unknown integration: {path}.{key}.{_did_you_mean(key, names)} "
            f"Integrations: {', '.join(names) or '(none)'}"
        )
    parts = path.split(".")
    integration = catalog.integrations[parts[2]]
    accounts = catalog.accounts[integration.name]
    alias = parts[3] if len(parts) == 4 else "default"
    function = integration.function(key)
    if function is not None:
        return ("function", catalog.target_id(integration, function, alias, f"{path}.{key}"))
    short_names = [fn.name for fn in integration.functions]
    candidates = short_names + [integration.prefix + name for name in short_names]
    if len(parts) == 3:
        if key in accounts:
            return ("namespace", f"{path}.{key}")
        raise LookupFailure(
            f"Unknown function or account: {path}.{key}.{_did_you_mean(key, candidates + list(accounts))} "
            f"Functions: {', '.join(short_names)}. Accounts: {', '.join(sorted(accounts))}"
        )
    raise LookupFailure(
        f"Unknown function: {path}.{key}.{_did_you_mean(key, candidates)} Functions: {', '.join(short_names)}"
    )


def target_at(catalog: Catalog, path: str) -> int | None:
    """The target id of the function at Lua ``path`` (``app.integrations.<name>[.<alias>].<fn>``), or
    ``None`` when no function is there. The path comes from a worker, so it is resolved step by step."""
    parts = path.split(".")
    if len(parts) not in (4, 5) or parts[0] != "app":
        return None
    where = _ROOT
    for key in parts[1:]:
        reply = resolve(catalog, where, key)
        if reply[0] == "function":
            return reply[1] if key is parts[-1] else None
        if reply[0] != "namespace":
            return None
        where = reply[1]
    return None
