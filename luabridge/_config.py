"""Accounts configuration: which accounts each integration has, read from the environment and a TOML file.

For an integration whose :class:`AccountScheme` has ``env_prefix`` ``P`` (e.g. ``HELPDESK``):

- Environment. ``P_URL`` and ``P_TOKEN`` (or ``P_<token alias>``, e.g. ``P_ACCESS_TOKEN``) configure the
  ``default`` account; ``P_<ALIAS>_URL`` and ``P_<ALIAS>_TOKEN`` (or ``P_<ALIAS>_<token alias>``) configure
  the account ``<alias>``, lower-cased. A token alias suffix is matched before ``TOKEN``, so
  ``P_ACCESS_TOKEN`` is the default account's token, never an account named ``access``. ``P_DEFAULT_*`` also
  names the default account. An empty variable counts as unset. Two variables that set the same field to
  different values are an error.
- Accounts file. ``config_path``, else ``$LUABRIDGE_CONFIG``, else
  ``$XDG_CONFIG_HOME/luabridge/accounts.toml`` (``~/.config/luabridge/accounts.toml``) when it exists.
  One table per account, with ``url`` and either an inline ``token`` or ``token_env``, the name of an
  environment variable holding it::

      [helpdesk.default]
      url = "https://api.helpdesk.example"
      token_env = "MY_HELPDESK_TOKEN"

      [helpdesk.work]
      url = "https://work.helpdesk.example"
      token = "..."

Precedence: per field, the environment overrides the file (a ``P_WORK_TOKEN`` replaces the token of
``[helpdesk.work]`` and keeps its ``url``). Every account named by either source exists; the ``default``
account always exists, with the scheme's default URL and no token when nothing configures it.
Aliases are lower-case Lua identifiers that are not Lua keywords, since scripts write them as
``app.integrations.<name>.<alias>``. Errors are :class:`ConfigError`; no message ever contains a token.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from ._errors import ConfigError
from ._registry import Account, AccountScheme, Secret

DEFAULT_ALIAS = "default"
FILE_KEYS = ("token", "token_env", "url")
LUA_KEYWORDS = frozenset(
    "and break do else elseif end false for function goto if in local nil not or repeat return then true "
    "until while".split()
)
_ALIAS = re.compile(r"[a-z_][a-z0-9_]*")
_TOML_TYPES = {
    str: "a string", bool: "a boolean", int: "an integer", float: "a float", list: "an array", dict: "a table"
}

# alias -> field ("url" or "token") -> (value, where it came from)
_Fields = dict[str, dict[str, tuple[str, str]]]


class _HasAccounts(Protocol):
    name: str
    accounts: AccountScheme


def load_accounts(
    integrations: Sequence[_HasAccounts],
    *,
    environ: Mapping[str, str],
    config_path: str | os.PathLike[str] | None = None,
) -> dict[str, dict[str, Account]]:
    """Return integration name -> alias -> :class:`Account`, from ``environ`` and the accounts file.

    Raises :class:`ConfigError` when an explicitly named file is missing or unreadable, the file is not
    valid TOML or does not have the expected shape, a ``token_env`` names an unset variable, an alias is
    not a valid Lua name, two variables disagree, or a URL is rejected by the integration's scheme.
    """
    path = _config_file(environ, config_path)
    document = _read_toml(path) if path is not None else {}
    known = [integration.name for integration in integrations]
    for name in document:
        if name not in known:
            raise ConfigError(f"{path}: unknown integration [{name}]; known: {', '.join(sorted(known))}")
    accounts: dict[str, dict[str, Account]] = {}
    for integration in integrations:
        fields: _Fields = {DEFAULT_ALIAS: {}}
        if integration.name in document:
            _overlay(fields, _file_fields(integration.name, document[integration.name], path, environ))
        _overlay(fields, _env_fields(integration.accounts, environ))
        ordered = [DEFAULT_ALIAS] + sorted(alias for alias in fields if alias != DEFAULT_ALIAS)
        accounts[integration.name] = {
            alias: _account(integration, alias, fields[alias]) for alias in ordered
        }
    return accounts


def describe_accounts(accounts: Mapping[str, Mapping[str, Account]]) -> str:
    """Return one line per account, ``name.alias  URL  (token set|no token)``; never a token."""
    rows = [
        (f"{name}.{alias}", account.url, "token set" if account.configured else "no token")
        for name, by_alias in accounts.items()
        for alias, account in by_alias.items()
    ]
    width = max((len(row[0]) for row in rows), default=0)
    return "\n".join(f"{label:<{width}}  {url}  ({state})" for label, url, state in rows)


def env_variable(scheme: AccountScheme, alias: str, suffix: str) -> str:
    """The environment variable that sets ``suffix`` (``URL``, ``TOKEN``) of account ``alias``."""
    if alias == DEFAULT_ALIAS:
        return f"{scheme.env_prefix}_{suffix}"
    return f"{scheme.env_prefix}_{alias.upper()}_{suffix}"


def _config_file(environ: Mapping[str, str], config_path: str | os.PathLike[str] | None) -> Path | None:
    """The accounts file to read, or ``None``; an explicitly named file must exist."""
    if config_path is not None:
        return _existing(Path(config_path), "")
    if environ.get("LUABRIDGE_CONFIG"):
        return _existing(Path(environ["LUABRIDGE_CONFIG"]), " (named by LUABRIDGE_CONFIG)")
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(environ.get("HOME") or Path.home(), ".config")
    default = Path(base, "luabridge", "accounts.toml")
    return default if default.is_file() else None


def _existing(path: Path, origin: str) -> Path:
    if not path.exists():
        raise ConfigError(f"accounts file not found: {path}{origin}")
    return path


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read accounts file {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message names the line and column and never quotes the text.
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def _file_fields(name: str, section: Any, path: Path, environ: Mapping[str, str]) -> _Fields:
    """Read ``[name.<alias>]`` tables into fields, checking keys and types."""
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: '{name}' must be a table of accounts such as [{name}.default]")
    fields: _Fields = {}
    for alias, table in section.items():
        where = f"{path} [{name}.{alias}]"
        if not isinstance(table, dict):
            raise ConfigError(
                f"{path}: '{name}.{alias}' must be a table of account settings such as "
                f"[{name}.default], not {_toml_type(table)}"
            )
        _check_alias(alias, where)
        for key, value in table.items():
            if key not in FILE_KEYS:
                raise ConfigError(f"{where}: unknown key '{key}'; valid keys: {', '.join(FILE_KEYS)}")
            if not isinstance(value, str):
                raise ConfigError(f"{where}: '{key}' must be a string, not {_toml_type(value)}")
        account = fields[alias] = {}
        if "url" in table:
            account["url"] = (table["url"], f"{where} url")
        if "token" in table and "token_env" in table:
            raise ConfigError(f"{where}: give either 'token' or 'token_env', not both")
        if "token" in table:
            if not table["token"]:
                raise ConfigError(f"{where}: 'token' is empty")
            account["token"] = (table["token"], f"{where} token")
        elif "token_env" in table:
            variable = table["token_env"]
            if not environ.get(variable):
                raise ConfigError(f"{where}: token_env names {variable}, which is not set")
            account["token"] = (environ[variable], variable)
    return fields


def _env_fields(scheme: AccountScheme, environ: Mapping[str, str]) -> _Fields:
    """Read ``<PREFIX>_...`` variables into fields; unrelated variables with the prefix are ignored."""
    prefix = f"{scheme.env_prefix}_"
    # Longest suffix first, so ``WORK_ACCESS_TOKEN`` is account ``work`` rather than ``work_access``.
    suffixes = sorted(
        [("URL", "url"), ("TOKEN", "token")] + [(alias, "token") for alias in scheme.token_aliases],
        key=lambda pair: -len(pair[0]),
    )
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for variable, value in sorted(environ.items()):
        if not variable.startswith(prefix) or not value:
            continue
        rest = variable[len(prefix):]
        for suffix, field in suffixes:
            if rest == suffix:
                alias = DEFAULT_ALIAS
            elif rest.endswith(f"_{suffix}"):
                alias = rest[: -len(suffix) - 1].lower()
                _check_alias(alias, variable)
            else:
                continue
            found.setdefault((alias, field), []).append((variable, value))
            break
    fields: _Fields = {}
    for (alias, field), settings in found.items():
        if len({value for _, value in settings}) > 1:
            names = " and ".join(variable for variable, _ in settings)
            raise ConfigError(f"{names} set the {field} of account '{alias}' to different values; keep one")
        variable, value = settings[0]
        fields.setdefault(alias, {})[field] = (value, variable)
    return fields


def _overlay(fields: _Fields, newer: _Fields) -> None:
    """Merge ``newer`` into ``fields``, field by field, ``newer`` winning."""
    for alias, values in newer.items():
        fields.setdefault(alias, {}).update(values)


def _account(integration: _HasAccounts, alias: str, values: Mapping[str, tuple[str, str]]) -> Account:
    scheme = integration.accounts
    url, where = values.get("url", (scheme.default_url, f"the default URL of {integration.name}"))
    try:
        normalized = scheme.normalize_url(url)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    token = values.get("token")
    return Account(
        integration=integration.name,
        alias=alias,
        url=normalized,
        token=Secret(token[0]) if token else None,
    )


def _check_alias(alias: str, where: str) -> None:
    if not _ALIAS.fullmatch(alias) or alias in LUA_KEYWORDS:
        raise ConfigError(
            f"{where}: {alias!r} is not a valid account alias; use lower-case letters, digits and '_', "
            "not starting with a digit and not a Lua keyword"
        )


def _toml_type(value: object) -> str:
    return next((name for kind, name in _TOML_TYPES.items() if isinstance(value, kind)), "a date or time")
