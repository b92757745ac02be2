"""Everything a run can reach, built once per bridge (or worker) and shared by its runs.

The catalog holds the integrations, their configured accounts, one prebuilt argument validator per
function, the client of each account (created on first use and reused, so calls share a connection) and
the documentation set.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ._docs import DocSet
from ._errors import ConfigError
from ._registry import Account, Function, Integration
from ._validation import ArgumentValidator


@dataclass(frozen=True)
class Target:
    """One callable name a script can reach: a function of an integration, bound to one account."""

    integration: Integration
    function: Function
    account: Account
    path: str  # the Lua path the script used, e.g. app.integrations.crm.work.list_contacts
    validator: ArgumentValidator  # the function's, shared by all its accounts

    @cached_property
    def qualified_name(self) -> str:
        return f"{self.integration.name}.{self.function.name}"

    @cached_property
    def alias(self) -> str:
        return self.account.alias


class Catalog:
    """The integrations, accounts, validators, clients and docs that runs share."""

    def __init__(
        self, integrations: Sequence[Integration], accounts: Mapping[str, Mapping[str, Account]]
    ) -> None:
        self.integrations = {integration.name: integration for integration in integrations}
        self.accounts: dict[str, dict[str, Account]] = {}
        for integration in integrations:
            configured = dict(accounts.get(integration.name, {}))
            if "default" not in configured:
                configured["default"] = Account(
                    integration.name, "default", integration.accounts.normalize_url(integration.accounts.default_url)
                )
            for alias in configured:
                if integration.function(alias) is not None:
                    raise ConfigError(
                        f"{integration.name} account alias {alias!r} is also a function name; choose another alias"
                    )
            self.accounts[integration.name] = configured
        self.validators = {
            (integration.name, fn.name): ArgumentValidator(f"{integration.name}.{fn.name}", fn.parameters)
            for integration in integrations
            for fn in integration.functions
        }
        self.docs = DocSet(
            list(integrations), {name: sorted(aliases) for name, aliases in self.accounts.items()}
        )
        self._targets: list[Target] = []
        self._target_ids: dict[str, int] = {}
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def target_id(self, integration: Integration, function: Function, alias: str, path: str) -> int:
        """Return the id of the callable at ``path``, registering it on first use."""
        with self._lock:
            if path not in self._target_ids:
                self._target_ids[path] = len(self._targets)
                account = self.accounts[integration.name][alias]
                validator = self.validators[integration.name, function.name]
                self._targets.append(Target(integration, function, account, path, validator))
            return self._target_ids[path]

    def target(self, target_id: int) -> Target:
        return self._targets[target_id]

    def client(self, integration: Integration, alias: str) -> Any:
        """The client of one account, created on first use and reused by every later call."""
        key = (integration.name, alias)
        client = self._clients.get(key)  # once made, a client is read without the lock
        if client is not None:
            return client
        with self._lock:
            if key not in self._clients:
                self._clients[key] = integration.connect(self.accounts[integration.name][alias])
            return self._clients[key]

    def close(self) -> None:
        """Close every client that has a ``close`` method (their HTTP sessions)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            close = getattr(client, "close", None)
            if callable(close):
                close()
