"""What an integration declares, and how luabridge finds integrations.

An integration is a module whose ``integration`` attribute is an :class:`Integration`. Installed ones, the
built-in ones too, are found through entry points (see ``_discovery.py``); a host may also name further
modules. All go through :func:`load_integration`, the one door.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from ._errors import IntegrationError, UsageError

Operation = Literal["read", "write"]


class Secret:
    """A credential that never shows itself in ``repr``, ``str`` or formatted output."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret text; call only where it is sent to its own service."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self):  # never pickled by accident into a log or a child's argv
        raise TypeError("a Secret cannot be pickled")


AccountSource = Literal["env", "file", "host"]


@dataclass(frozen=True)
class Account:
    """One configured account of one integration: its alias, base URL, token and further settings.

    ``settings`` holds the values of the scheme's other declared keys (``account.settings["region"]``);
    a secret one is a :class:`Secret`. ``source`` says who configured the account (``"env"``: the
    environment, ``"file"``: the accounts file, ``"host"``: the host's own code) and ``token_setting``
    where its token is set, or would be (``HELPDESK_WORK_TOKEN``, ``accounts.toml [helpdesk.work] token``),
    so that advice names the place the user can change; neither takes part in comparisons.
    """

    integration: str
    alias: str
    url: str
    token: Secret | None = field(default=None)
    settings: Mapping[str, str | Secret] = field(default_factory=dict, hash=False)
    source: AccountSource = field(default="host", compare=False)
    token_setting: str | None = field(default=None, compare=False)

    @property
    def configured(self) -> bool:
        return self.token is not None


@dataclass(frozen=True)
class AccountKey:
    """One setting of an integration's accounts, as the accounts file and the environment spell it.

    ``name`` is the key in an ``[<name>.<alias>]`` table and, upper-cased, the suffix of its variable
    (``region``: ``<PREFIX>_REGION``, ``<PREFIX>_<ALIAS>_REGION``); ``env_aliases`` are further suffixes
    accepted for it. A ``secret`` value is held as a :class:`Secret`, refused when it holds whitespace or a
    control character, and may be given in the file as ``<name>_env``, the name of a variable holding it.
    A ``required`` key must be set for every account that is configured at all; ``default`` is the value
    of a key that is not set.
    """

    name: str
    secret: bool = False
    required: bool = False
    default: str | None = None
    env_aliases: tuple[str, ...] = ()
    description: str = ""

    @property
    def env_suffixes(self) -> tuple[str, ...]:
        return (self.name.upper(), *self.env_aliases)


URL_KEY = AccountKey("url", description="the service's base URL; the integration completes and checks it")
TOKEN_KEY = AccountKey("token", secret=True, description="the credential sent with every request")
RATE_LIMIT_KEY = AccountKey(
    "rate_limit", description='requests the account may send, such as "1000/hour", shared by every node '
    "(see docs/serve.md)")
_KEY_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class AccountScheme:
    """How an integration's accounts are configured.

    ``env_prefix`` names the environment variables (``<PREFIX>_URL``, ``<PREFIX>_TOKEN``,
    ``<PREFIX>_<ALIAS>_URL``, ``<PREFIX>_<ALIAS>_TOKEN``); ``token_aliases`` are further suffixes accepted
    for a token (``ACCESS_TOKEN`` gives ``<PREFIX>_ACCESS_TOKEN``); ``normalize_url`` turns what a user
    wrote into the base URL and raises :class:`ConfigError` when it cannot. ``keys`` declares the
    settings an account may have besides ``url``, ``token`` and ``rate_limit``, which every scheme has (declare them too
    to describe them or give them aliases); their values end up in :attr:`Account.settings`. Raises
    :class:`IntegrationError` for a key that cannot be spelled, that repeats, or a ``token`` that is not
    secret.
    """

    env_prefix: str
    default_url: str
    normalize_url: Callable[[str], str]
    token_aliases: tuple[str, ...] = ()
    keys: tuple[AccountKey, ...] = ()

    def __post_init__(self) -> None:
        declared = {key.name for key in self.keys}
        keys = (*(key for key in (URL_KEY, TOKEN_KEY, RATE_LIMIT_KEY) if key.name not in declared), *self.keys)
        names = [key.name for key in keys]
        for name in names:
            if not _KEY_NAME.fullmatch(name) or name.endswith("_env"):
                raise IntegrationError(
                    f"account key {name!r} of {self.env_prefix} must be lower-case letters, digits and '_', "
                    "starting with a letter and not ending in '_env'"
                )
        if len(set(names)) != len(names):
            raise IntegrationError(f"account keys of {self.env_prefix} repeat a name: {', '.join(names)}")
        if not next(key for key in keys if key.name == "token").secret:
            raise IntegrationError(f"the account key 'token' of {self.env_prefix} must be secret")
        object.__setattr__(self, "keys", keys)

    def key(self, name: str) -> AccountKey | None:
        """The declared key called ``name``, or ``None``."""
        return next((key for key in self.keys if key.name == name), None)


@dataclass(slots=True)
class CallContext:
    """What a handler knows about the call it serves.

    ``deadline`` is a ``time.monotonic()`` value the call must finish by (the run's time limit);
    ``max_body`` is the most bytes an answer's body may have, before and after decompression (``None``:
    no cap); the HTTP layer records the last ``http_status`` it saw here for the call log.
    """

    account: Account
    deadline: float
    max_body: int | None = None
    http_status: int | None = None


Handler = Callable[[Any, Mapping[str, Any], CallContext], Any]
RequestDescriber = Callable[[Mapping[str, Any]], Mapping[str, Any]]


class Simulator(Protocol):
    """A local stand-in for an integration's service, for demos and tests without credentials."""

    url: str
    token: str

    def start(self) -> Simulator: ...

    def stop(self) -> None: ...

    def serve_forever(self) -> None: ...


@dataclass(frozen=True)
class Function:
    """One function an integration offers to Lua.

    ``parameters`` is the JSON Schema (an ``object`` schema) of its named arguments; each property
    carries a ``description`` and may carry a ``default``. ``handler(client, args, ctx)`` performs the
    call with validated ``args`` (defaults filled in) and returns JSON-like data; without one, the
    client's method of the function's name is called as ``client.<name>(args, ctx)``. ``result``, when
    given, is the JSON Schema of what the function returns to Lua: each property's ``description`` says
    what it holds (and what an id refers to), ``required`` names the fields that are always there; the
    function's doc page is generated from it.
    """

    name: str
    summary: str
    description: str
    operation: Operation
    parameters: Mapping[str, Any]
    handler: Handler = None  # type: ignore[assignment]  # filled in by __post_init__
    examples: tuple[str, ...] = ()
    # A write's request as it would be sent, without sending it: {"method", "path", "body"}, shown by dry
    # runs and approvals (docs/writes.md).
    request: RequestDescriber | None = None
    result: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.handler is None:
            object.__setattr__(self, "handler", _client_method(self.name))


def _client_method(name: str) -> Handler:
    """The handler that calls ``client.<name>(args, ctx)``; a client without that method is a broken
    integration, said so when the function is first called."""

    def handler(client: Any, args: Mapping[str, Any], ctx: CallContext) -> Any:
        method = getattr(client, name, None)
        if not callable(method):
            raise IntegrationError(
                f"{type(client).__name__} has no method {name!r}, which the function {name!r} calls "
                "since it gives no handler"
            )
        return method(args, ctx)

    handler.__qualname__ = f"client.{name}"
    return handler


@dataclass(frozen=True)
class Integration:
    """An integration: its functions, its docs, and how to reach its accounts.

    ``connect(account)`` returns the client object handlers receive; it is called once per account and
    reused for every call to that account. ``reference`` is the markdown served as
    ``lua_read_doc("integrations.<name>")``; ``guides`` are further pages (``integrations.<name>.<page>``).
    ``simulator(port=, faults=)``, when given, builds a :class:`Simulator` of the service for ``--demo``.
    ``module`` is the import path that yields this integration, filled in by :func:`load_integration`.
    """

    name: str
    title: str
    functions: tuple[Function, ...]
    reference: str
    accounts: AccountScheme
    connect: Callable[[Account], Any]
    guides: Mapping[str, str] = field(default_factory=dict)
    simulator: Callable[..., Simulator] | None = None
    module: str | None = None

    @property
    def prefix(self) -> str:
        """The prefix of the long function names (``crm_`` for ``crm_list_contacts``)."""
        return f"{self.name}_"

    def function(self, name: str) -> Function | None:
        """Return the function called ``name`` (short or prefixed), or ``None``."""
        short = name[len(self.prefix):] if name.startswith(self.prefix) else name
        for fn in self.functions:
            if fn.name == short:
                return fn
        return None


def load_integration(reference: str) -> Integration:
    """Import ``reference`` and return its integration.

    ``reference`` is a module name, whose ``integration`` attribute is taken, or ``module:attribute``, as an
    entry point names an object. Raises :class:`UsageError` when the module cannot be found and
    :class:`IntegrationError` when importing it fails or what it names is not an :class:`Integration`.
    """
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import integration module {module_name!r}: {exc}") from exc
    except Exception as exc:  # the module's own code failed: a bug in the integration, not a wrong name
        raise IntegrationError(
            f"importing integration module {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    integration = getattr(module, attribute or "integration", None)
    if not isinstance(integration, Integration):
        raise IntegrationError(
            f"module {module_name!r} has no {attribute or 'integration'!r} of type luabridge.Integration"
        )
    return replace(integration, module=reference)
