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

Keys. What an account may set is what its scheme declares (:class:`AccountKey`; by default ``url`` and
``token``): each key ``k`` is ``k`` in the file and ``P_K`` / ``P_<ALIAS>_K`` in the environment, and a
secret key may also be given in the file as ``k_env``. A key the scheme does not declare is refused with
the closest declared one suggested; a required key must be set for every account that sets anything.

Precedence: per field, the environment overrides the file (a ``P_WORK_TOKEN`` replaces the token of
``[helpdesk.work]`` and keeps its ``url``). Every account named by either source exists; the ``default``
account always exists, with the scheme's default URL and no token when nothing configures it.
Aliases are lower-case Lua identifiers that are not Lua keywords, since scripts write them as
``app.integrations.<name>.<alias>``. A token holding whitespace or a control character (a stray line break
from copying it, say) is refused, since it could not travel in an HTTP header. The accounts file is UTF-8
TOML of at most :data:`MAX_FILE_BYTES`. Errors are :class:`ConfigError`; no message ever contains a token:
when a scheme refuses a URL, every configured token and the URL's user info, query and fragment are cut
from its message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from urllib.parse import quote, quote_plus, unquote

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from ._budgets import RATE_LIMIT_SETTING, parse_rate_limit
from ._errors import ConfigError
from ._registry import Account, AccountKey, AccountScheme, AccountSource, Secret
from ._suggest import did_you_mean

DEFAULT_ALIAS = "default"
MAX_FILE_BYTES = 1024 * 1024
# The TOML parser's work grows with the square of a dotted key's length; no accounts file needs long keys.
MAX_DOTS_PER_LINE = 64
REDACTED = "[redacted]"
LUA_KEYWORDS = frozenset(
    "and break do else elseif end false for function goto if in local nil not or repeat return then true "
    "until while".split()
)
_ALIAS = re.compile(r"[a-z_][a-z0-9_]*")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOT_IN_TOKENS = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_TOML_TYPES = {
    str: "a string", bool: "a boolean", int: "an integer", float: "a float", list: "an array", dict: "a table"
}



class _Setting(NamedTuple):
    """One key's value for one account, with where it was set: the words for messages, and the source."""

    value: str
    where: str
    source: AccountSource


# alias -> key name ("url", "token", ...) -> its setting
_Fields = dict[str, dict[str, _Setting]]


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

    Raises :class:`ConfigError` when an explicitly named file is missing or unreadable, the file is too
    large, not UTF-8, not valid TOML or does not have the expected shape, a ``token_env`` names an unset
    variable, an alias is not a valid Lua name, two variables disagree, a token holds whitespace or a
    control character, or a URL is rejected by the integration's scheme.
    """
    path = _config_file(environ, config_path)
    document = _read_toml(path) if path is not None else {}
    known = [integration.name for integration in integrations]
    for name in document:
        if name not in known:
            raise ConfigError(f"{path}: unknown integration [{name}]; known: {', '.join(sorted(known))}")
    every_fields: dict[str, _Fields] = {}
    for integration in integrations:
        fields = every_fields[integration.name] = {DEFAULT_ALIAS: {}}
        if integration.name in document:
            _overlay(fields, _file_fields(integration, document[integration.name], path, environ))
        _overlay(fields, _env_fields(integration.accounts, environ))
    # Any secret may turn up pasted into any URL, so each URL error is cleaned of all of them.
    tokens = [
        setting.value
        for integration in integrations
        for values in every_fields[integration.name].values()
        for name, setting in values.items()
        if _key(integration.accounts, name).secret
    ]
    accounts: dict[str, dict[str, Account]] = {}
    for integration in integrations:
        fields = every_fields[integration.name]
        ordered = [DEFAULT_ALIAS] + sorted(alias for alias in fields if alias != DEFAULT_ALIAS)
        accounts[integration.name] = {
            alias: _account(integration, alias, fields[alias], tokens, path) for alias in ordered
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
            data = file.read(MAX_FILE_BYTES + 1)  # never more: the path may be /dev/zero
    except OSError as exc:
        raise ConfigError(f"cannot read accounts file {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: the accounts file is larger than {MAX_FILE_BYTES // 1024 // 1024} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}: the accounts file is not valid UTF-8 (byte {exc.start}, line {line})") from None
    for number, line_text in enumerate(text.splitlines(), 1):
        if line_text.count(".") > MAX_DOTS_PER_LINE:
            raise ConfigError(
                f"{path}: line {number} has more than {MAX_DOTS_PER_LINE} dots; accounts files need only short "
                "keys such as [name.alias]"
            )
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message names the line and column and never quotes the text.
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None


def _file_fields(integration: _HasAccounts, section: Any, path: Path, environ: Mapping[str, str]) -> _Fields:
    """Read ``[name.<alias>]`` tables into fields, checking keys and types."""
    name, scheme = integration.name, integration.accounts
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: '{name}' must be a table of accounts such as [{name}.default]")
    valid = sorted(
        spelling for key in scheme.keys for spelling in ((key.name, f"{key.name}_env") if key.secret else (key.name,))
    )
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
            if key not in valid:
                hint = did_you_mean(key, valid, phrase=" did you mean {}?")
                raise ConfigError(f"{where}: unknown key '{key}';{hint} valid keys: {', '.join(valid)}")
            if not isinstance(value, str):
                raise ConfigError(f"{where}: '{key}' must be a string, not {_toml_type(value)}")
        account = fields[alias] = {}
        for key in scheme.keys:
            setting = _file_setting(key, table, where, environ)
            if setting is not None:
                account[key.name] = setting
    return fields


def _file_setting(key: AccountKey, table: Mapping[str, str], where: str, environ: Mapping[str, str]) -> _Setting | None:
    """The value of ``key`` in one account's table: given inline, or for a secret, named by ``<key>_env``."""
    indirect = f"{key.name}_env"
    if key.name in table and indirect in table:
        raise ConfigError(f"{where}: give either '{key.name}' or '{indirect}', not both")
    if key.name in table:
        if key.secret and not table[key.name]:
            raise ConfigError(f"{where}: '{key.name}' is empty")
        return _Setting(table[key.name], f"{where} {key.name}", "file")
    if indirect not in table:
        return None
    variable = table[indirect]
    if not _VARIABLE.fullmatch(variable):
        # Not echoed: what is not a variable name may well be the secret itself.
        raise ConfigError(
            f"{where}: '{indirect}' must name an environment variable (letters, digits and '_'); "
            f"to give the {key.name} itself, use '{key.name}'"
        )
    if not environ.get(variable):
        raise ConfigError(f"{where}: {indirect} names {variable}, which is not set")
    return _Setting(environ[variable], variable, "file")


def _env_fields(scheme: AccountScheme, environ: Mapping[str, str]) -> _Fields:
    """Read ``<PREFIX>_...`` variables into fields; unrelated variables with the prefix are ignored."""
    prefix = f"{scheme.env_prefix}_"
    # Longest suffix first, so ``WORK_ACCESS_TOKEN`` is account ``work`` rather than ``work_access``.
    suffixes = sorted(
        [(suffix, key.name) for key in scheme.keys for suffix in key.env_suffixes]
        + [(alias, "token") for alias in scheme.token_aliases],
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
        fields.setdefault(alias, {})[field] = _Setting(value, variable, "env")
    return fields


def _overlay(fields: _Fields, newer: _Fields) -> None:
    """Merge ``newer`` into ``fields``, field by field, ``newer`` winning."""
    for alias, values in newer.items():
        fields.setdefault(alias, {}).update(values)


def _account(
    integration: _HasAccounts, alias: str, values: Mapping[str, _Setting], tokens: Sequence[str], path: Path | None
) -> Account:
    scheme = integration.accounts
    url, where, _ = values.get("url", _Setting(scheme.default_url, f"the default URL of {integration.name}", "env"))
    normalized = normalize_account_url(scheme, url, where=where, secrets=tokens)
    # The account comes from where its token does, else its URL; one that nothing set is the environment's.
    first = values.get("token") or values.get("url") or next(iter(values.values()), None)
    source: AccountSource = first.source if first is not None else "env"
    settings: dict[str, str | Secret] = {}
    for key in scheme.keys:
        setting = values.get(key.name)
        if setting is None:
            if key.required and values:
                raise ConfigError(_missing(integration, alias, key, source, path))
            if key.default is None or key.name in ("url", "token"):
                continue
            setting = _Setting(key.default, "", source)
        if key.secret and _NOT_IN_TOKENS.search(setting.value):
            raise ConfigError(
                f"{setting.where}: the {key.name} of account '{alias}' contains a control character or "
                "whitespace; copy it again without spaces or line breaks"
            )
        if key.name == RATE_LIMIT_SETTING:
            try:
                parse_rate_limit(setting.value)
            except ValueError as exc:
                raise ConfigError(f"{setting.where}: {exc}") from None
        if key.name not in ("url", "token"):
            settings[key.name] = Secret(setting.value) if key.secret else setting.value
    token = values.get("token")
    if token is not None:
        token_setting = token.where
    elif source == "file":
        token_setting = f"{path} [{integration.name}.{alias}]"
    else:
        token_setting = env_variable(scheme, alias, "TOKEN")
    return Account(
        integration=integration.name,
        alias=alias,
        url=normalized,
        token=Secret(token.value) if token else None,
        settings=settings,
        source=source,
        token_setting=token_setting,
    )


def normalize_account_url(scheme: AccountScheme, url: str, *, where: str, secrets: Iterable[str] = ()) -> str:
    """Return ``url`` as the scheme's base URL, or raise :class:`ConfigError` naming ``where`` it was set,
    with ``secrets`` and the URL's own credentials cut from the scheme's message."""
    try:
        return scheme.normalize_url(url)
    except ConfigError as exc:
        # Not chained: the scheme's own message is the one that may quote a secret.
        message = _redact(str(exc), [*secrets, *_url_credentials(url)])
        raise ConfigError(f"{where}: {message}") from None


def _missing(integration: _HasAccounts, alias: str, key: AccountKey, source: AccountSource, path: Path | None) -> str:
    """The message for an account that lacks a required key, naming where the user configured it."""
    what = f" ({key.description})" if key.description else ""
    if source == "file":
        return f"{path} [{integration.name}.{alias}]: missing required key '{key.name}'{what}"
    variable = env_variable(integration.accounts, alias, key.name.upper())
    return f"account '{alias}' of {integration.name} needs '{key.name}'{what}; set {variable}"


def _key(scheme: AccountScheme, name: str) -> AccountKey:
    key = scheme.key(name)
    assert key is not None, name  # fields are only ever read for declared keys
    return key


def _url_credentials(url: str) -> list[str]:
    """The parts of ``url`` that may hold credentials: its user info, query and fragment, whole and split
    into their fields (a password, a parameter's value)."""
    rest = url.split("://", 1)[-1]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    userinfo = authority.rpartition("@")[0]
    before_fragment, _, fragment = rest.partition("#")
    query = before_fragment.partition("?")[2]
    return [
        whole_or_part
        for whole in (userinfo, query, fragment)
        for whole_or_part in (whole, *re.split(r"[:&;=]", whole))
    ]


def _redact(message: str, secrets: Iterable[str]) -> str:
    """``message`` with every secret replaced, in any case, as typed, quoted by ``repr``, or percent-encoded
    or decoded."""
    spellings = {
        spelling
        for secret in secrets if secret
        for spelling in (
            secret, repr(secret)[1:-1], quote(secret, safe=""), quote(secret), quote_plus(secret), unquote(secret)
        )
    }
    if not spellings:
        return message
    # Longest first, so that a secret holding another is cut whole.
    pattern = "|".join(re.escape(spelling) for spelling in sorted(spellings, key=len, reverse=True))
    return re.sub(pattern, REDACTED, message, flags=re.IGNORECASE)


def _check_alias(alias: str, where: str) -> None:
    if not _ALIAS.fullmatch(alias) or alias in LUA_KEYWORDS:
        raise ConfigError(
            f"{where}: {alias!r} is not a valid account alias; use lower-case letters, digits and '_', "
            "not starting with a digit and not a Lua keyword"
        )


def _toml_type(value: object) -> str:
    return next((name for kind, name in _TOML_TYPES.items() if isinstance(value, kind)), "a date or time")
