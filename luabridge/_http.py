"""The HTTP policy every integration client shares: headers, limits, retries and transport errors.

:func:`send` makes one logical call. It sends the account's credential (a Bearer token unless the caller
gives its own auth headers) to the URL it is given and nowhere else (redirects are never followed,
proxies and ``.netrc`` from the environment are ignored, cookies are never stored nor sent back), and
holds every call to the run's limits:

- the whole request (connecting, the answer's headers and its body) ends by the run's deadline: a
  watchdog thread cuts the connection of a request still under way when it passes, so a server that
  trickles its answer cannot outlast the run;
- the answer's body is read in small pieces and refused once it is larger than ``ctx.max_body`` bytes,
  counted both as received and as decompressed, so neither a huge answer nor a compression bomb is ever
  held in memory.

It retries only what is safe to retry:

- a read (GET) retries on 429, 500, 502, 503, 504, failed connections, broken connections and timeouts;
- a write (POST) retries only on 429 and on failures to connect, where the request provably never
  reached the server; after that nothing is retried, so a write is never performed twice.

Between attempts it waits what the server asks (``Retry-After`` in seconds or as an HTTP date, else
``X-RateLimit-Reset`` on a 429), else an exponential backoff with full jitter. A wait that would pass the
deadline is not started, and nothing is retried once the deadline has cut a request. Status answers are
returned for the integration to word; transport failures are raised as :class:`RemoteError` and limits as
:class:`LimitExceeded`, worded here, once, with the token scrubbed from the message, the whole exception
chain and the log records written while the call runs.
"""

from __future__ import annotations

import email.utils
import functools
import heapq
import http.cookiejar
import io
import itertools
import json as jsonlib
import logging
import math
import os
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from datetime import timezone
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from . import _budgets
from ._errors import CallError, LimitExceeded, RemoteError
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
# urllib3 >= 2.6 inflates at most the bytes asked for per read, so one read never holds more than this.
_CHUNK = 64 * 1024
_NameResolutionError = getattr(urllib3.exceptions, "NameResolutionError", ())  # urllib3 >= 2
# UnicodeEncodeError: http.client refuses a header (or requests a body) that cannot be encoded.
_TRANSPORT_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, UnicodeEncodeError)

# What the current thread's call is doing: its secrets (for the log filter) and its attempt's watch.
_local = threading.local()


# One account's client serves every run at once (a service runs 64 and more): a connection is opened only
# when a call needs one, so a large pool costs nothing idle, and a small one closed connections in a burst.
POOL_SIZE = 128


def new_session(*, pool_size: int = POOL_SIZE) -> requests.Session:
    """Return a session for one client: pooled keep-alive connections the deadline watchdog can cut,
    no automatic retries, no cookies, nothing taken from the environment.

    :func:`send` holds a request to the run's deadline only on a session made here.
    """
    session = requests.Session()
    # An HTTPS_PROXY or ~/.netrc in the host's environment must not capture or replace the token.
    session.trust_env = False
    # A cookie set in one run must not reach the server again in another run that shares the client.
    session.cookies.set_policy(_NoCookies())
    adapter = _Adapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def redact(text: str, *secrets: str | None) -> str:
    """Return ``text`` with every spelling of each non-empty secret replaced by ``***``.

    The spellings are those libraries print: the secret itself, percent-encoded (with and without ``/``
    kept, and as a query value), inside a ``repr`` or a JSON string (control characters and quotes
    escaped, non-ASCII as is or escaped, as text or as bytes), escaped once more when such a text is
    itself quoted, and all of these in any letter case (host names are printed lower-cased).
    """
    present = tuple(secret for secret in secrets if secret)
    return _spellings(present).sub("***", text) if present else text


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    ctx: CallContext,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    auth: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
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

    Of ``session`` only its transport adapters, default headers, ``verify`` and ``cert`` are used: its
    cookies, auth, hooks, proxies and redirect settings never apply (see :func:`new_session`).
    ``auth`` are the headers that carry the credential (``None``: ``Authorization: Bearer <token>`` when
    the account has a token); their values are scrubbed from every message like the token. ``headers``
    are further headers, sent after ``Accept: application/json`` and before the auth headers. ``clock``
    is the clock of ``ctx.deadline``; ``wall_clock`` reads the Unix time that HTTP dates and
    ``X-RateLimit-Reset`` use. Returns the last response, whatever its status, with its whole body read
    (``response.content``), and records each status in ``ctx.http_status``. Raises
    :class:`LimitExceeded` when the deadline passed before or during a request (kind ``"timeout"``) or
    the body is larger than ``ctx.max_body`` (kind ``"memory"``), and :class:`RemoteError` when no usable
    response arrived: a transport failure, or a server asking to wait past the deadline.
    """
    token = ctx.account.token.reveal() if ctx.account.token is not None else None
    if auth is None:
        auth = {"Authorization": f"Bearer {token}"} if token else {}
    # A header that spells the token is scrubbed through it ("Bearer ***"); one that encodes it (Basic
    # auth's base64) is a secret of its own.
    secrets = (token, *(value for value in auth.values() if not token or token not in value))
    sent = {"Accept": "application/json", **(headers or {}), **auth}
    if json is not None:
        sent["Content-Type"] = "application/json"
    host = _host(url)
    idempotent = method.upper() in IDEMPOTENT_METHODS
    retry_statuses = READ_RETRY_STATUSES if idempotent else WRITE_RETRY_STATUSES
    attempt = 0
    _local.secrets = secrets
    try:
        while True:
            attempt += 1
            left = ctx.deadline - clock()
            if left <= 0:
                again = " again" if attempt > 1 else ""
                raise LimitExceeded(f"the run's time limit was reached before calling {host}{again}",
                                    kind="timeout")
            _budgets.gate().before_request(ctx.account, ctx.deadline, clock=clock, sleep=sleep)  # may wait
            left = ctx.deadline - clock()
            timeouts = (min(connect_timeout, left), min(read_timeout, left))
            watch = _WATCHDOG.watch(left)
            try:
                response = _exchange(session, method, url, watch, ctx, host, params=params, json=json,
                                     headers=sent, timeout=timeouts)
            except _TRANSPORT_ERRORS as exc:
                what, reached, transient = _describe(exc, host, timeouts, (connect_timeout, read_timeout), secrets)
                _scrub(exc, secrets)
                if watch.expired or (_timed_out(exc) and clock() >= ctx.deadline):
                    message = f"the run's time limit was reached while waiting for {host}"
                    if reached and not idempotent:
                        message = f"{message}; {OUTCOME_UNKNOWN}"
                    raise LimitExceeded(message, kind="timeout") from exc
                if reached and not idempotent:
                    raise RemoteError(f"{what}; {OUTCOME_UNKNOWN}") from exc
                if not transient or attempt >= max_attempts:
                    raise RemoteError(_gave_up(what, attempt)) from exc
                wait = backoff * 2 ** (attempt - 1) * jitter()
                if wait >= ctx.deadline - clock():
                    message = f"{_gave_up(what, attempt)}; no time left in this run to try again"
                    raise RemoteError(message) from exc
                _log_retry(method, url, what, wait, attempt, max_attempts, secrets)
                sleep(wait)
                continue
            finally:
                _WATCHDOG.release(watch)

            status = response.status_code
            if status not in retry_statuses or attempt >= max_attempts:
                return response
            asked = _server_wait(response, wall_clock)
            if status == 429 and asked is not None:
                _budgets.gate().pause(ctx.account, asked)  # every request of the account waits, on every node
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
            _log_retry(method, url, f"HTTP {status}", wait, attempt, max_attempts, secrets)
            sleep(wait)
    except CallError as exc:
        # The host name, a library's text or a URL may spell the token; every message passes here.
        exc.cause = redact(exc.cause, *secrets)
        exc.args = (exc.cause,)
        raise
    finally:
        _local.secrets = ()


def _exchange(
    session: requests.Session, method: str, url: str, watch: _Watch, ctx: CallContext, host: str, *,
    params: Mapping[str, Any] | None, json: Any, headers: Mapping[str, str], timeout: tuple[float, float],
) -> requests.Response:
    """One attempt under ``watch``: send the request and read the whole answer into ``response.content``."""
    request = _prepare(session, method, url, params, json, headers)
    _local.watch = watch  # the pool hands the connection it picks to this watch
    try:
        # Straight to the transport adapter: what Session.send adds (cookies, redirects, hooks, the
        # environment) is what this module refuses, and it costs more than the exchange on loopback.
        response = session.get_adapter(url).send(
            request, stream=True, timeout=timeout, verify=session.verify, cert=session.cert, proxies={})
    finally:
        _local.watch = None
    ctx.http_status = response.status_code
    try:
        response._content = _read_body(response, ctx.max_body, host)
        if watch.expired:  # a body that ends when its connection closes looks whole once the watchdog cut it
            raise requests.exceptions.ChunkedEncodingError(f"the answer from {host} was cut off")
    except BaseException:
        response.close()  # closes the half-read connection instead of returning it to the pool
        raise
    response._content_consumed = True
    return response


def _prepare(
    session: requests.Session, method: str, url: str, params: Mapping[str, Any] | None, json: Any,
    headers: Mapping[str, str],
) -> requests.PreparedRequest:
    """The request as ``session.request`` would prepare it, less what this module refuses: the session's
    default headers under ours, no cookies, no auth from the URL or ``.netrc``, no hooks."""
    merged = requests.structures.CaseInsensitiveDict(session.headers)
    merged.update(headers)
    request = requests.PreparedRequest()
    request.prepare_method(method)
    request.prepare_url(url, params)
    request.prepare_headers(merged)
    request.prepare_body(None, None, json)
    return request


def _read_body(response: requests.Response, cap: int | None, host: str) -> bytes:
    """The body, decompressed, read a piece at a time; raise LimitExceeded once it passes ``cap`` bytes
    as received or as decompressed.

    urllib3's errors are translated as requests translates them when it reads a body itself.
    """
    raw = response.raw
    length = response.headers.get("Content-Length", "")
    if cap is not None and length.isdigit() and int(length) > cap:
        raise _too_large(host, cap)
    # A plain body of announced length is whole once that many bytes arrived: no read to see it end.
    expected = int(length) if length.isdigit() and not response.headers.get("Content-Encoding") else None
    body = io.BytesIO()  # getvalue() hands over its buffer without a copy
    size = 0
    try:
        while True:
            # Near the cap, ask for one byte more than it allows: enough to know the body passes it.
            chunk = raw.read(_CHUNK if cap is None else min(_CHUNK, cap - size + 1), decode_content=True)
            if not chunk:
                return body.getvalue()
            size += len(chunk)
            if cap is not None and (size > cap or raw.tell() > cap):
                raise _too_large(host, cap)
            if size == expected and not body.tell():
                return chunk
            body.write(chunk)
            if size == expected:
                return body.getvalue()
    except urllib3.exceptions.ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from exc
    except urllib3.exceptions.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from exc
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.ConnectionError(exc) from exc
    except urllib3.exceptions.SSLError as exc:
        raise requests.exceptions.SSLError(exc) from exc


def _too_large(host: str, cap: int) -> LimitExceeded:
    return LimitExceeded(
        f"the answer from {host} is larger than the run's memory allows (more than {cap} bytes); "
        "the run's memory limit can be raised",
        kind="memory",
    )


def _timed_out(exc: BaseException) -> bool:
    """Whether a transport failure is a timeout (while connecting, or waiting for headers or body)."""
    inner = exc.args[0] if exc.args else None
    return isinstance(exc, requests.Timeout) or isinstance(inner, urllib3.exceptions.ReadTimeoutError)


def _describe(
    exc: Exception, host: str, used: tuple[float, float], configured: tuple[float, float],
    secrets: tuple[str | None, ...],
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
        return f"could not make a secure connection to {host}: {_innermost(exc, secrets)}", reached, False
    if isinstance(reason, _NameResolutionError):
        return f"could not connect to {host}: host name not found", False, True
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        cause = reason.__cause__ or reason.__context__
        why = cause.strerror if isinstance(cause, OSError) and cause.strerror else _innermost(reason, secrets)
        return f"could not connect to {host}: {why.lower()}", False, True
    if isinstance(exc, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        return f"the connection to {host} broke before a complete answer arrived", True, True
    if isinstance(exc, UnicodeEncodeError):  # its text would quote a character of the header, the token's
        return (f"the request to {host} failed: a header or the body holds a character {exc.encoding} cannot "
                "encode, so nothing was sent"), False, False
    # requests refuses a header value before sending anything.
    reached = not isinstance(exc, requests.exceptions.InvalidHeader)
    return f"the request to {host} failed: {_innermost(exc, secrets)}", reached, False


def _deepest(exc: BaseException) -> BaseException:
    """The last exception of a chain: usually the one that says why."""
    seen = {id(exc)}
    while (deeper := exc.__cause__ or exc.__context__) is not None and id(deeper) not in seen:
        seen.add(id(deeper))
        exc = deeper
    return exc


def _innermost(exc: BaseException, secrets: tuple[str | None, ...]) -> str:
    """The text of the deepest exception in a chain, the secrets removed before it is shortened."""
    deepest = _deepest(exc)
    text = redact(str(deepest), *secrets) or type(deepest).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _scrub(exc: BaseException, secrets: tuple[str | None, ...]) -> None:
    """Remove the secrets from a foreign exception graph before it becomes our error's cause.

    requests keeps the prepared request (whose headers carry the token) on its exceptions, and an
    exception's text may quote anything, so both are cleaned on every exception reachable through
    ``__cause__`` and ``__context__``.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        link = pending.pop()
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        for attribute in ("request", "response"):
            if getattr(link, attribute, None) is not None:
                setattr(link, attribute, None)
        if any(secrets):
            text, args = str(link), repr(link.args)
            if redact(text, *secrets) != text or redact(args, *secrets) != args:
                link.args = (redact(text, *secrets),)
        pending += (link.__cause__, link.__context__)


@functools.lru_cache(maxsize=32)
def _spellings(secrets: tuple[str, ...]) -> re.Pattern[str]:
    """One case-insensitive pattern matching every spelling :func:`redact` removes, longest first."""
    forms: set[str] = set()
    for secret in secrets:
        for encoded in (secret, quote(secret, safe=""), quote(secret), quote_plus(secret)):
            for once in _escapes(encoded):
                forms |= _escapes(once)
    forms.discard("")
    return re.compile("|".join(map(re.escape, sorted(forms, key=len, reverse=True))), re.IGNORECASE)


def _escapes(text: str) -> set[str]:
    """``text`` and how it shows inside a ``repr`` or a JSON string."""
    forms = {
        text,
        repr(text)[1:-1],
        repr("'\"" + text)[4:-1],  # the same inside a repr that escapes single quotes
        ascii(text)[1:-1],
        jsonlib.dumps(text)[1:-1],
        jsonlib.dumps(text, ensure_ascii=False)[1:-1],
        repr(text.encode("utf-8", "surrogatepass"))[2:-1],
    }
    try:
        forms.add(repr(text.encode("latin-1"))[2:-1])  # http.client encodes header values so
    except UnicodeEncodeError:
        pass
    return forms


class _RedactingFilter(logging.Filter):
    """Removes the secrets of the call running in the current thread from the records urllib3 writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = getattr(_local, "secrets", ())
        if any(secrets):
            try:
                message = record.getMessage()
            except (TypeError, ValueError):  # a broken record; logging reports it, unchanged
                return True
            record.msg, record.args = redact(message, *secrets), None
            if record.exc_info and not record.exc_text:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info), *secrets)
        return True


# A logger's filters see only the records logged on it, so each urllib3 module's logger gets one.
for _name in [name for name in logging.root.manager.loggerDict if name.split(".")[0] == "urllib3"]:
    logging.getLogger(_name).addFilter(_RedactingFilter())


class _NoCookies(http.cookiejar.CookiePolicy):
    """A cookie policy that accepts no cookie and returns none: calls and runs share no state."""

    netscape = rfc2965 = hide_cookie2 = False

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def domain_return_ok(self, domain: str, request: Any) -> bool:
        return False

    def path_return_ok(self, path: str, request: Any) -> bool:
        return False


class _Watch:
    """One attempt's deadline (``time.monotonic()``) and the connection it is using."""

    __slots__ = ("deadline", "connection", "expired", "done", "queued")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.connection: _CuttableConnection | None = None
        self.expired = False  # the watchdog cut the attempt
        self.done = False  # the attempt ended; nothing is cut any more
        self.queued = False  # still in the watchdog's heap


class _Watchdog:
    """One daemon thread that cuts the connection of every attempt still under way at its deadline.

    Cutting is ``shutdown(SHUT_RDWR)`` on a duplicate of the connection's socket, which wakes the thread
    blocked on it at once. An attempt costs a heap push and a flag; finished attempts stay in the heap
    until they reach its top or the heap is compacted, so neither watching nor releasing wakes the
    thread unless the new deadline is the nearest.
    """

    _COMPACT_AT = 64  # released attempts kept in the heap before it is rebuilt without them

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        # Reentrant: a connection closed by the garbage collector inside a locked section locks again.
        self._lock = threading.Condition(threading.RLock())
        self._heap: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()
        self._released = 0
        self._thread: threading.Thread | None = None

    def watch(self, seconds: float) -> _Watch:
        """Start watching an attempt that must end within ``seconds``."""
        watch = _Watch(time.monotonic() + seconds)
        if math.isinf(seconds):
            return watch
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="luabridge-http-deadlines", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (watch.deadline, next(self._order), watch))
            watch.queued = True
            if self._heap[0][2] is watch:
                self._lock.notify()
        return watch

    def release(self, watch: _Watch) -> None:
        """Stop watching an attempt: its connection is never cut after this returns."""
        with self._lock:
            watch.done = True
            connection = watch.connection
            if connection is not None and connection._watch is watch:
                connection._watch = None
                if connection._dropped:
                    self._forget(connection)
            if watch.queued:
                self._released += 1
                if self._released > self._COMPACT_AT and self._released * 2 > len(self._heap):
                    self._heap = [entry for entry in self._heap if not entry[2].done]
                    heapq.heapify(self._heap)
                    self._released = 0

    def assign(self, connection: _CuttableConnection, watch: _Watch | None) -> None:
        """Record that ``connection`` now serves ``watch`` (``None``: back in its pool)."""
        with self._lock:
            connection._watch = watch
            if watch is None:
                if connection._dropped:
                    self._forget(connection)
            else:
                watch.connection = connection
                if watch.expired:
                    _shut(connection._spare)

    def connected(self, connection: _CuttableConnection, sock: socket.socket) -> None:
        """Keep a duplicate of a newly connected socket, to cut it from this thread."""
        spare = sock.dup()
        with self._lock:
            self._forget(connection)
            connection._spare = spare
            if connection._watch is not None and connection._watch.expired:
                _shut(spare)

    def closed(self, connection: _CuttableConnection) -> None:
        """Drop the duplicate of a closed connection's socket, once no attempt reads through it."""
        with self._lock:
            if connection._watch is None:
                self._forget(connection)
            else:
                # http.client closes the connection of an answer that ends with it, then reads the body
                # through the same socket: the attempt must stay cuttable until it is released.
                connection._dropped = True

    def _forget(self, connection: _CuttableConnection) -> None:
        # Under the lock, so the watchdog never shuts down a descriptor number after it was reused.
        if connection._spare is not None:
            connection._spare.close()
            connection._spare = None
        connection._dropped = False

    def _run(self) -> None:
        with self._lock:
            while True:
                heap = self._heap
                while heap and heap[0][2].done:
                    heapq.heappop(heap)[2].queued = False
                    self._released -= 1
                if not heap:
                    self._lock.wait()
                    continue
                wait = heap[0][0] - time.monotonic()
                if wait > 0:
                    self._lock.wait(wait)
                    continue
                watch = heapq.heappop(heap)[2]
                watch.queued = False
                watch.expired = True
                connection = watch.connection
                if connection is not None and connection._watch is watch:
                    _shut(connection._spare)


def _shut(sock: socket.socket | None) -> None:
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already closed by the peer
            pass


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):
    # A forked child has no watchdog thread and may have inherited its lock held.
    os.register_at_fork(after_in_child=_WATCHDOG._reset)


class _CuttableConnection:
    """Mixed into urllib3's connections: keeps a duplicate socket the watchdog can shut down."""

    _watch: _Watch | None = None
    _spare: socket.socket | None = None
    _dropped = False  # closed while an attempt still reads through its socket

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        # Taken before any TLS handshake, which a trickling server could stretch too.
        _WATCHDOG.connected(self, sock)
        return sock

    def close(self) -> None:
        try:
            super().close()  # type: ignore[misc]
        finally:
            _WATCHDOG.closed(self)


class _CuttableHTTPConnection(_CuttableConnection, HTTPConnection):
    pass


class _CuttableHTTPSConnection(_CuttableConnection, HTTPSConnection):
    pass


class _WatchedPool:
    """Mixed into urllib3's pools: a connection taken out serves the current thread's watch."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)  # type: ignore[misc]
        _WATCHDOG.assign(connection, getattr(_local, "watch", None))
        return connection

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            _WATCHDOG.assign(conn, None)
        super()._put_conn(conn)  # type: ignore[misc]


class _HTTPPool(_WatchedPool, HTTPConnectionPool):
    ConnectionCls = _CuttableHTTPConnection


class _HTTPSPool(_WatchedPool, HTTPSConnectionPool):
    ConnectionCls = _CuttableHTTPSConnection


class _Adapter(HTTPAdapter):
    """An adapter whose pools hand out connections the deadline watchdog can cut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


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
    method: str, url: str, what: str, wait: float, attempt: int, max_attempts: int,
    secrets: tuple[str | None, ...],
) -> None:
    log.info(
        "%s %s: %s; retrying in %.2f s (attempt %d of %d)",
        method, redact(url, *secrets), redact(what, *secrets), wait, attempt + 1, max_attempts,
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
