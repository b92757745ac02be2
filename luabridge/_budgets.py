"""Per-account request budgets and pauses, enforced in the host before each HTTP request an integration sends.

An account's ``rate_limit`` setting (``"1000/hour"``, ``"10/second"``, ``"100 per minute"``: the notation of
the `limits` library) is a moving-window budget of requests to its service, retries included. A request
that does not fit waits for the window to make room, never past the run's deadline: when the room comes too
late the call fails with an ``http`` error naming the budget, and nothing is sent.

Budgets live in this process by default. :func:`share_through` moves them to Redis, where every process
given the same URL shares them: one budget per account, however many nodes spend it (``luabridge serve
--redis URL``). A shared gate also shares pauses: a 429 whose answer says when to retry pauses the account
until then on every node (in one process, the request that got the 429 already waits what it
asked). Accounts are named ``<integration>.<alias>``; no token is ever stored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ._errors import RemoteError
from ._registry import Account

RATE_LIMIT_SETTING = "rate_limit"
PAUSE_PREFIX = "luabridge:pause:"
# A window that says it has room again in no time is asked again after this long, not in a busy loop.
MIN_WAIT = 0.01


def parse_rate_limit(text: str) -> RateLimitItem:
    """The budget ``text`` describes, or :class:`ValueError` saying how to write one."""
    try:
        return parse(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a rate limit; write it like \"1000/hour\", \"10/second\" or "
                         "\"100 per minute\"") from None


class RequestGate:
    """Where every HTTP request of every run waits for its account's budget and pause (see the module
    docstring). ``storage`` is a `limits` storage URL: ``memory://`` (this process) or ``redis://...``."""

    def __init__(self, storage: str = "memory://") -> None:
        self.storage_url = storage
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage))
        self._redis: Any = None
        if storage.startswith(("redis://", "rediss://", "unix://")):
            import redis  # only a shared gate needs the client

            self._redis = redis.Redis.from_url(storage)
        self._lock = threading.Lock()
        self.waits: dict[str, list[float]] = {}  # account -> [how many waits, seconds waited], for metrics

    def before_request(
        self, account: Account, deadline: float, *, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Return once ``account`` may send one more request, counted against its budget; raise
        :class:`RemoteError` when that would be after ``deadline`` (a time of ``clock``)."""
        name = f"{account.integration}.{account.alias}"
        spec = account.settings.get(RATE_LIMIT_SETTING)
        item = parse_rate_limit(str(spec)) if spec else None
        while True:
            paused = self._paused_for(name)
            if paused > 0:
                self._wait(name, paused, deadline, clock, sleep, (
                    f"rate limited (HTTP 429): account {name} is paused for {paused:.1f} s more, as its service "
                    "asked, but only {left:.1f} s are left in this run; nothing was sent"), status=429)
                continue
            if item is None or self._limiter.hit(item, name):
                return
            reset = self._limiter.get_window_stats(item, name).reset_time
            wait = max(MIN_WAIT, reset - time.time())
            self._wait(name, wait, deadline, clock, sleep, (
                f"the request budget of account {name} ({spec}) is spent; the next request fits in "
                f"{wait:.1f} s but only {{left:.1f}} s are left in this run; nothing was sent"))

    def _wait(self, name: str, seconds: float, deadline: float, clock: Callable[[], float],
              sleep: Callable[[float], None], message: str, status: int | None = None) -> None:
        """Sleep ``seconds``, or raise :class:`RemoteError` with ``message`` (its ``{left}``: the seconds
        left) when that would reach ``deadline``."""
        left = deadline - clock()
        if seconds >= left:
            raise RemoteError(message.format(left=max(0.0, left)), status=status)
        with self._lock:
            count = self.waits.setdefault(name, [0, 0.0])
            count[0] += 1
            count[1] += seconds
        sleep(seconds)

    def pause(self, account: Account, seconds: float) -> None:
        """Hold every request of ``account`` on every node for ``seconds``, as a 429's ``Retry-After``
        asked (a gate that is not shared keeps no pauses)."""
        if self._redis is None:
            return
        name = f"{account.integration}.{account.alias}"
        # PX: the pause ends by itself, on every node at once.
        self._redis.set(PAUSE_PREFIX + name, repr(time.time() + seconds), px=max(1, int(seconds * 1000)))

    def _paused_for(self, name: str) -> float:
        if self._redis is None:
            return 0.0
        until = self._redis.get(PAUSE_PREFIX + name)
        return float(until) - time.time() if until is not None else 0.0


_gate = RequestGate()


def gate() -> RequestGate:
    """The gate this process's requests pass."""
    return _gate


def share_through(storage: str) -> RequestGate:
    """Keep budgets and pauses in ``storage`` (a Redis URL) from now on, shared with every process that uses
    it; return the new gate. Raises :class:`ValueError` for a URL the `limits` library cannot use."""
    global _gate
    _gate = RequestGate(storage)
    return _gate
