"""The HTTP policy every integration client shares: headers, timeouts, retries and transport errors.

:func:`send` makes one logical call. It sends the account's Bearer token to the URL it is given and
nowhere else (redirects are never followed, proxies and ``.netrc`` from the environment are ignored),
bounds every attempt by the run's deadline, and retries only what is safe to retry:

- a read (GET) retries on 429, 500, 502, 503, 504, failed connections, broken connections and timeouts;
- a write (POST) retries only on 429 and on failures to connect, where the request provably never
  reached the server; after that nothing is retried, so a write is never performed twice.

Between attempts it waits what the server asks (``Retry-After`` in seconds or as an HTTP date, else
``X-RateLimit-Reset`` on a 429), else an exponential backoff with full jitter. A wait that would pass the
deadline is not started. Status answers are returned for the integration to word; transport failures
are raised as :class:`RemoteError`, worded here, once, with the token scrubbed from the whole chain.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import timezone
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from ._errors import RemoteError
from ._registry import CallContext

log = logging.getLogger("luabridge.http")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READ_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
WRITE_RETRY_STATUSES = frozenset({429})
OUTCOME_UNKNOWN = (
    "the request may have reached the server; the outcome is unknown and it was not retried "
    "(a retry could create a duplicate)"
)

# A reset value this small cannot be a current Unix time, so the server meant "seconds from now".
_EPOCH_FLOOR = 1_000_000_000
_NameResolutionError = getattr(urllib3.exceptions, "NameResolutionError", ())  # urllib3 >= 2
_TRANSPORT_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError)


def new_session(*, pool_size: int = 8) -> requests.Session:
    """Return a session for one client: pooled keep-alive connections, no automatic retries."""
    session = requests.Session()
    # An HTTPS_PROXY or ~/.netrc in the host's environment must not capture or replace the token.
    session.trust_env = False
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def redact(text: str, *secrets: str | None) -> str:
    """Return ``text`` with each non-empty secret, plain or percent-encoded, replaced by ``***``."""
    for secret in secrets:
        if secret:
            for form in (secret, quote(secret, safe="")):
                text = text.replace(form, "***")
    return text


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    ctx: CallContext,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
    max_attempts: int = 4,
    backoff: float = 0.25,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    jitter: Callable[[], float] = random.random,
) -> requests.Response:
    """Send one request with ``ctx.account``'s token, retrying as the module docstring describes.

    ``clock`` is the clock of ``ctx.deadline``; ``wall_clock`` reads the Unix time that HTTP dates and
    ``X-RateLimit-Reset`` use. Returns the last response, whatever its status, and records each status
    in ``ctx.http_status``. Raises :class:`RemoteError` when no usable response arrived: a transport
    failure, no time left, or a server asking to wait past the deadline.
    """
    token = ctx.account.token.reveal() if ctx.account.token is not None else None
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if json is not None:
        headers["Content-Type"] = "application/json"
    host = _host(url)
    idempotent = method.upper() in IDEMPOTENT_METHODS
    retry_statuses = READ_RETRY_STATUSES if idempotent else WRITE_RETRY_STATUSES
    attempt = 0
    while True:
        attempt += 1
        left = ctx.deadline - clock()
        if left <= 0:
            raise RemoteError(f"no time left in this run to call {host}")
        timeouts = (min(connect_timeout, left), min(read_timeout, left))
        try:
            response = session.request(
                method, url, params=params, json=json, headers=headers,
                timeout=timeouts, allow_redirects=False,
            )
        except _TRANSPORT_ERRORS as exc:
            _scrub(exc, token)
            what, reached, transient = _describe(exc, host, timeouts, (connect_timeout, read_timeout))
            if reached and not idempotent:
                raise RemoteError(f"{what}; {OUTCOME_UNKNOWN}") from exc
            if not transient or attempt >= max_attempts:
                raise RemoteError(_gave_up(what, attempt)) from exc
            wait = backoff * 2 ** (attempt - 1) * jitter()
            if wait >= ctx.deadline - clock():
                message = f"{_gave_up(what, attempt)}; no time left in this run to try again"
                raise RemoteError(message) from exc
            _log_retry(method, url, what, wait, attempt, max_attempts, token)
            sleep(wait)
            continue

        ctx.http_status = status = response.status_code
        if status not in retry_statuses or attempt >= max_attempts:
            return response
        asked = _server_wait(response, wall_clock)
        left = ctx.deadline - clock()
        if asked is not None and asked > left:
            what = "rate limited (HTTP 429)" if status == 429 else f"HTTP {status}"
            raise RemoteError(
                f"{what}; the server asks to retry after {_seconds(asked)} s "
                f"but only {_seconds(left)} s are left in this run",
                status=status,
            )
        wait = asked if asked is not None else backoff * 2 ** (attempt - 1) * jitter()
        if wait >= left:
            return response  # our own backoff cannot fit; let the caller word the last answer
        _log_retry(method, url, f"HTTP {status}", wait, attempt, max_attempts, token)
        sleep(wait)


def _describe(
    exc: Exception, host: str, used: tuple[float, float], configured: tuple[float, float]
) -> tuple[str, bool, bool]:
    """Word a transport failure: (what happened, whether the request may have reached, worth a retry)."""
    inner = exc.args[0] if exc.args else None
    reason = getattr(inner, "reason", inner)
    if isinstance(exc, requests.ConnectTimeout):
        return f"timed out after {_timeout(used[0], configured[0])} connecting to {host}", False, True
    if isinstance(exc, requests.ReadTimeout) or isinstance(reason, urllib3.exceptions.ReadTimeoutError):
        return f"timed out after {_timeout(used[1], configured[1])} waiting for {host}", True, True
    if isinstance(exc, requests.exceptions.SSLError):
        # urllib3 reports TLS failures the same way during the handshake and mid-answer; only a refused
        # certificate proves the request was never sent. Either way it is not worth retrying.
        reached = not isinstance(_deepest(exc), ssl.SSLCertVerificationError)
        return f"could not make a secure connection to {host}: {_innermost(exc)}", reached, False
    if isinstance(reason, _NameResolutionError):
        return f"could not connect to {host}: host name not found", False, True
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        cause = reason.__cause__ or reason.__context__
        why = cause.strerror if isinstance(cause, OSError) and cause.strerror else _innermost(reason)
        return f"could not connect to {host}: {why.lower()}", False, True
    if isinstance(exc, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        return f"the connection to {host} broke before a complete answer arrived", True, True
    return f"the request to {host} failed: {_innermost(exc)}", True, False


def _deepest(exc: BaseException) -> BaseException:
    """The last exception of a chain: usually the one that says why."""
    seen = {id(exc)}
    while (deeper := exc.__cause__ or exc.__context__) is not None and id(deeper) not in seen:
        seen.add(id(deeper))
        exc = deeper
    return exc


def _innermost(exc: BaseException) -> str:
    """The text of the deepest exception in a chain, shortened."""
    deepest = _deepest(exc)
    text = str(deepest) or type(deepest).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _scrub(exc: BaseException | None, token: str | None) -> None:
    """Remove the token from a foreign exception chain before it becomes our error's cause.

    requests keeps the prepared request (whose headers carry the token) on its exceptions, and an
    exception's text may quote anything, so both are cleaned on every link of the chain.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "request", None) is not None:
            exc.request = None  # type: ignore[attr-defined]
        if token:
            text, args = str(exc), repr(exc.args)
            if redact(text, token) != text or redact(args, token) != args:
                exc.args = (redact(text, token),)
        exc = exc.__cause__ or exc.__context__


def _server_wait(response: requests.Response, wall_clock: Callable[[], float]) -> float | None:
    """Seconds the server asks us to wait before retrying, or ``None`` when it does not say."""
    retry_after = response.headers.get("Retry-After", "").strip()
    if retry_after:
        seconds = _number(retry_after)
        if seconds is not None:
            return seconds
        try:
            when = email.utils.parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return max(0.0, when.timestamp() - wall_clock())
    if response.status_code == 429:
        reset = _number(response.headers.get("X-RateLimit-Reset", ""))
        if reset is not None:
            return max(0.0, reset - wall_clock()) if reset >= _EPOCH_FLOOR else reset
    return None


def _number(text: str) -> float | None:
    """Parse a non-negative finite number of seconds, or return ``None``."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _log_retry(
    method: str, url: str, what: str, wait: float, attempt: int, max_attempts: int, token: str | None
) -> None:
    log.info(
        "%s %s: %s; retrying in %.2f s (attempt %d of %d)",
        method, redact(url, token), what, wait, attempt + 1, max_attempts,
    )


def _gave_up(what: str, attempts: int) -> str:
    return f"{what} (gave up after {attempts} attempts)" if attempts > 1 else what


def _timeout(used: float, configured: float) -> str:
    text = f"{_seconds(used)} s"
    return text if used >= configured else f"{text} (the time left in this run)"


def _seconds(value: float) -> str:
    """Format a duration: ``120``, ``5.0``, ``3.2``."""
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _host(url: str) -> str:
    """The ``host[:port]`` of a URL, for messages (never user info, path or query)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host
