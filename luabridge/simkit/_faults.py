"""Plan the faults a simulator injects: which requests they hit, how often, and what they do.

A :class:`FaultPlan` is an ordered list of :class:`FaultRule`. Each rule matches requests by method and path
prefix and fires on every ``every``-th matching request, at most ``times`` times (``None``: no limit). For one
request, every firing ``latency`` rule adds its delay, and the first firing rule of any other kind decides the
answer; rules after it are not consulted, so their counts do not move. The plan only decides;
:class:`~luabridge.simkit.SimServer` carries the decision out.

Kinds:

- ``latency``: wait ``delay`` seconds before answering (whatever the answer is).
- ``status``: answer ``status`` (400-599) with the service's error body; ``retry_after`` adds ``Retry-After``.
  A 429 always carries ``Retry-After`` (default 1 s) and ``X-RateLimit-Remaining: 0``. A fractional
  ``retry_after`` is sent as a decimal (``Retry-After: 0.2``), not strict HTTP but it keeps tests fast.
- ``malformed``: answer ``status`` (default 200) with a truncated JSON body (``variant="json"``) or an HTML
  page (``variant="html"``), as a misconfigured host or a broken proxy would.
- ``drop``: wait ``stall`` seconds, then close the connection without answering.
- ``drop_after_store``: handle the request fully (a POST stores what it creates), wait ``stall`` seconds,
  then close the connection without answering: the request took effect but its answer was lost.
- ``huge``: answer 200 with a valid JSON body of ``size`` bytes (``Content-Length`` announced), generated
  as it is sent, never held in memory.
- ``gzip_bomb``: answer 200 with a chunked ``Content-Encoding: gzip`` body that inflates to ``size`` bytes
  of valid JSON, compressed as it is sent (about a thousandth of ``size`` on the wire).
- ``endless``: answer 200 with a chunked JSON list that never ends.
- ``trickle``: handle the request fully (a POST stores what it creates), then send the answer one byte
  every ``delay`` seconds: its status line and headers (``part="headers"``) or its body (``part="body"``,
  the default). A client whose deadline passes gets nothing complete.

``huge``, ``gzip_bomb`` and ``endless`` answer in place of the endpoint, so a POST stores nothing.

Grammar of :meth:`FaultPlan.parse`, for command-line flags (spaces around tokens are ignored)::

    plan   := rule ("," rule)*
    rule   := head (":" option)*
    head   := "latency=" SECONDS | STATUS | "malformed" ["=json" | "=html"] | "drop" | "drop_after_store"
            | "huge=" SIZE | "gzip_bomb=" SIZE | "endless" | "trickle=" SECONDS
    option := "path=" PREFIX | "method=" METHOD | "times=" N | "every=" N
            | "retry_after=" SECONDS | "stall=" SECONDS | "status=" STATUS | "part=" ("headers" | "body")
    SIZE   := N ["K" | "M" | "G"]        (bytes, or KiB, MiB, GiB)

Examples: ``latency=0.05``, ``429:times=2:retry_after=1``, ``503:path=/v2/items:every=3``,
``malformed=html:times=1``, ``drop_after_store:method=POST:path=/v2/items:times=1:stall=2``,
``huge=200M``, ``gzip_bomb=400M:times=1``, ``endless:path=/v2/items``, ``trickle=0.3:part=headers``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus

from ._streams import MIN_SIZE

_HTTP_STATUSES = frozenset(status.value for status in HTTPStatus)
KINDS = ("latency", "status", "malformed", "drop", "drop_after_store", "huge", "gzip_bomb", "endless", "trickle")
DROPS = ("drop", "drop_after_store")
SIZED = ("huge", "gzip_bomb")
STREAMS = ("huge", "gzip_bomb", "endless")  # answers generated while they are sent
PARTS = ("headers", "body")

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
VARIANTS = ("json", "html")  # of malformed answers


@dataclass
class FaultRule:
    """One fault: what it does, which requests it matches, and how often it fires.

    Raises :class:`ValueError` when a field is out of range or does not apply to the kind.
    """

    kind: str
    path: str = ""
    method: str | None = None
    times: int | None = None
    every: int = 1
    delay: float = 0.0
    status: int | None = None
    retry_after: float | None = None
    variant: str = "json"
    stall: float = 0.0
    size: int | None = None
    part: str | None = None
    seen: int = field(default=0, init=False, compare=False)
    fired: int = field(default=0, init=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.method is not None:
            self.method = self.method.upper()
        if self.path and not self.path.startswith("/"):
            raise ValueError(f"fault path must start with '/', got {self.path!r}")
        if self.times is not None and self.times < 1:
            raise ValueError(f"fault times must be at least 1, got {self.times}")
        if self.every < 1:
            raise ValueError(f"fault every must be at least 1, got {self.every}")
        if min(self.delay, self.stall, self.retry_after or 0.0) < 0:
            raise ValueError("fault delay, stall and retry_after must not be negative")
        if self.delay and self.kind not in ("latency", "trickle"):
            raise ValueError("delay applies only to latency and trickle faults")
        if self.kind in SIZED:
            if self.size is None or self.size < MIN_SIZE:
                raise ValueError(f"a {self.kind} fault needs a size of at least {MIN_SIZE} bytes, got {self.size}")
        elif self.size is not None:
            raise ValueError("size applies only to huge and gzip_bomb faults")
        if self.kind == "trickle":
            self.part = self.part or "body"
            if self.part not in PARTS:
                raise ValueError(f"trickle part must be headers or body, got {self.part!r}")
        elif self.part is not None:
            raise ValueError("part applies only to trickle faults")
        if self.stall and self.kind not in DROPS:
            raise ValueError("stall applies only to drop and drop_after_store faults")
        if self.retry_after is not None and self.kind != "status":
            raise ValueError("retry_after applies only to status faults")
        if self.kind == "status":
            if self.status is None or not 400 <= self.status <= 599 or self.status not in _HTTP_STATUSES:
                raise ValueError(f"a status fault needs an HTTP error status (400-599), got {self.status}")
            if self.status == 429 and self.retry_after is None:
                self.retry_after = 1.0
        elif self.kind == "malformed":
            if self.variant not in VARIANTS:
                raise ValueError(f"malformed variant must be json or html, got {self.variant!r}")
            self.status = 200 if self.status is None else self.status
            if not 200 <= self.status <= 599:
                raise ValueError(f"a malformed fault needs a status from 200 to 599, got {self.status}")
        elif self.status is not None:
            raise ValueError(f"status applies only to status and malformed faults, not {self.kind}")

    def matches(self, method: str, path: str) -> bool:
        """Tell whether this rule applies to a request, whether or not it would fire."""
        return (self.method is None or self.method == method) and path.startswith(self.path)

    def _tick(self) -> bool:
        """Count one matching request and tell whether the rule fires on it."""
        if self.times is not None and self.fired >= self.times:
            return False
        self.seen += 1
        if self.seen % self.every:
            return False
        self.fired += 1
        return True

    def __str__(self) -> str:
        """The rule in :meth:`FaultPlan.parse` syntax."""
        if self.kind == "latency":
            parts = [f"latency={self.delay:g}"]
        elif self.kind in SIZED:
            assert self.size is not None
            parts = [f"{self.kind}={_format_size(self.size)}"]
        elif self.kind == "trickle":
            parts = [f"trickle={self.delay:g}"] + ([f"part={self.part}"] if self.part != "body" else [])
        elif self.kind == "status":
            parts = [str(self.status)]
        elif self.kind == "malformed":
            parts = [f"malformed={self.variant}"] + ([f"status={self.status}"] if self.status != 200 else [])
        else:
            parts = [self.kind]
        for name, value in (("path", self.path), ("method", self.method), ("times", self.times)):
            if value:
                parts.append(f"{name}={value}")
        if self.every != 1:
            parts.append(f"every={self.every}")
        if self.retry_after is not None:
            parts.append(f"retry_after={self.retry_after:g}")
        if self.stall:
            parts.append(f"stall={self.stall:g}")
        return ":".join(parts)


def _format_size(size: int) -> str:
    for unit in ("G", "M", "K"):
        if size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return str(size)


@dataclass(frozen=True)
class Decision:
    """What to do with a request: wait ``delay`` seconds, then apply ``rule`` (``None``: answer normally)."""

    delay: float = 0.0
    rule: FaultRule | None = None


_OPTION_TYPES = {"path": str, "method": str, "times": int, "every": int, "retry_after": float,
                 "stall": float, "status": int, "part": str}
_VALUED = ("latency", "malformed", "huge", "gzip_bomb", "trickle")  # heads that take an "=" value


def _number(text: str, kind: type, what: str, spec: str) -> int | float:
    try:
        return kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise ValueError(f"bad fault spec {spec!r}: {what} must be {noun}, got {text!r}") from None


def _size(text: str, what: str, spec: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]?)", text, re.IGNORECASE)
    if match is None:
        raise ValueError(f"bad fault spec {spec!r}: {what} needs a size in bytes such as 4096, 64K, 200M or "
                         f"1G, got {text!r}")
    return int(match[1]) * _UNITS[match[2].upper()]


def parse_rule(spec: str) -> FaultRule:
    """Parse one rule of the grammar in the module docstring.

    Raises :class:`ValueError` naming the rule and what is wrong with it.
    """
    head, *options = [part.strip() for part in spec.split(":")]
    name, _, value = (token.strip() for token in head.partition("="))
    kwargs: dict[str, object] = {}
    if name == "latency":
        if not value:
            raise ValueError(f"bad fault spec {spec!r}: latency needs seconds, e.g. latency=0.05")
        kwargs.update(kind="latency", delay=_number(value, float, "latency", spec))
    elif name.isdigit():
        kwargs.update(kind="status", status=int(name))
    elif name == "malformed":
        kwargs.update(kind="malformed", variant=value or "json")
    elif name in SIZED:
        if not value:
            raise ValueError(f"bad fault spec {spec!r}: {name} needs a size, e.g. {name}=200M")
        kwargs.update(kind=name, size=_size(value, name, spec))
    elif name == "trickle":
        if not value:
            raise ValueError(f"bad fault spec {spec!r}: trickle needs seconds per byte, e.g. trickle=0.3")
        kwargs.update(kind="trickle", delay=_number(value, float, "trickle", spec))
    elif name in DROPS or name == "endless":
        kwargs.update(kind=name)
    else:
        raise ValueError(f"bad fault spec {spec!r}: unknown fault {name!r}; expected latency=SECONDS, "
                         f"a status such as 429 or 503, malformed[=json|html], drop, drop_after_store, "
                         f"huge=SIZE, gzip_bomb=SIZE, endless or trickle=SECONDS")
    if value and name not in _VALUED:
        raise ValueError(f"bad fault spec {spec!r}: {name} takes no '=' value; use options such as :times=2")
    for option in options:
        key, sep, text = (token.strip() for token in option.partition("="))
        if key not in _OPTION_TYPES or not sep or not text:
            raise ValueError(f"bad fault spec {spec!r}: bad option {option!r}; expected one of "
                             + ", ".join(f"{k}=..." for k in _OPTION_TYPES))
        if key in kwargs:
            raise ValueError(f"bad fault spec {spec!r}: option {key} given twice")
        kind = _OPTION_TYPES[key]
        kwargs[key] = text if kind is str else _number(text, kind, key, spec)
    try:
        return FaultRule(**kwargs)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValueError(f"bad fault spec {spec!r}: {exc}") from None


class FaultPlan:
    """A thread-safe, ordered set of fault rules a simulator consults for every request."""

    def __init__(self, rules: Iterable[FaultRule] = ()) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = list(rules)

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """Build a plan from comma-separated rules (grammar in the module docstring); ``""`` is no faults.

        Raises :class:`ValueError` naming the bad rule and what is wrong with it.
        """
        return cls(parse_rule(part) for part in spec.split(",") if part.strip())

    def add(self, kind: str | FaultRule, **options: object) -> FaultRule:
        """Append a rule, given as a :class:`FaultRule` or as its kind and fields; return it.

        ``add("status", status=429, times=2)``, ``add("latency", delay=0.05, path="/v2/items")``.
        Raises :class:`ValueError` for an invalid rule.
        """
        rule = kind if isinstance(kind, FaultRule) else FaultRule(kind, **options)  # type: ignore[arg-type]
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        """The rules, in the order they are consulted."""
        with self._lock:
            return tuple(self._rules)

    def decide(self, method: str, path: str) -> Decision:
        """Count a request against the matching rules and return what to do with it."""
        delay = 0.0
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                if rule.kind == "latency":
                    delay += rule.delay if rule._tick() else 0.0
                elif rule._tick():
                    return Decision(delay, rule)
        return Decision(delay)

    def __str__(self) -> str:
        """The plan in :meth:`parse` syntax."""
        return ",".join(str(rule) for rule in self.rules)
