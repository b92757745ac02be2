"""A loopback HTTP/1.1 server a simulated service is built on: lifecycle, records, faults, answers.

:class:`SimServer` binds on creation, serves in a daemon thread (:meth:`~SimServer.start`) or the calling
one (:meth:`~SimServer.serve_forever`), keeps connections alive so a client session reuses one TCP
connection, records every request (its ``Authorization`` redacted), counts connections, checks a bearer
token, consults a :class:`~luabridge.simkit.FaultPlan` before every answer and carries its decision out,
streaming the answers that are too big to hold. A service subclasses it and supplies :meth:`~SimServer.routes`
and the shape of its error body (:meth:`~SimServer.error_body`); the rest is optional class attributes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl

from ._answers import Answer, ReceivedRequest, ServiceError
from ._faults import STREAMS, FaultPlan, FaultRule
from ._streams import Trickle, endless, gzipped, padding

log = logging.getLogger(__name__)

REDACTED = "REDACTED"
RATE_WINDOW = 60  # seconds of one X-RateLimit-* window
Routes = Mapping[str, Callable[[], Answer]]
_S = TypeVar("_S", bound="SimServer")


class SimServer:
    """A simulated service on ``host:port`` (``port=0`` picks a free one), bound on creation.

    Requests must carry ``Authorization: Bearer <token>`` (override :meth:`authorize` for another scheme).
    ``faults`` is a :class:`FaultPlan` or a spec for :meth:`FaultPlan.parse`; it stays reachable as
    ``server.faults`` to change between requests. Raises :class:`ValueError` for a bad spec and
    :class:`OSError` when the port cannot be bound.

    Class attributes a service may set: ``base_path`` (what :attr:`url` ends with, such as ``/v2``),
    ``server_version`` (the ``Server`` header), ``rate_limit`` (requests per minute reported in
    ``X-RateLimit-*`` headers on every answer; ``None`` sends none), ``invalid_request_code`` (the error code
    of a request whose body cannot be read), ``malformed_bodies`` (content type and body per ``malformed``
    variant) and ``endless_list`` (the list name and the item an ``endless`` answer repeats).
    """

    base_path: ClassVar[str] = ""
    server_version: ClassVar[str] = "SimServer/1.0"
    rate_limit: ClassVar[int | None] = None
    invalid_request_code: ClassVar[str | None] = None
    max_request_body: ClassVar[int] = 1 << 20
    malformed_bodies: ClassVar[Mapping[str, tuple[str, bytes]]] = {
        "json": ("application/json", b'{"items": [{"id": "7f1c2a90-3b'),  # cut off mid-stream
        "html": ("text/html; charset=utf-8", b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>\n"),
    }
    endless_list: ClassVar[tuple[str, Mapping[str, Any]]] = ("items", {"id": "endless"})

    def __init__(self, *, token: str, host: str = "127.0.0.1", port: int = 0,
                 faults: FaultPlan | str | None = None) -> None:
        self.token = token
        if isinstance(faults, str):
            faults = FaultPlan.parse(faults)
        self.faults = faults if faults is not None else FaultPlan()
        self._records_lock = threading.Lock()
        self._received: list[ReceivedRequest] = []
        self._rate_window = (0.0, 0)  # (window end as Unix time, requests answered in the window)
        self._stopping = threading.Event()
        self._serving = False
        self._thread: threading.Thread | None = None  # the daemon thread of start()
        self._http = _HTTPServer((host, port), self)

    # -- what a service supplies ------------------------------------------------------------------------

    def routes(self, request: ReceivedRequest) -> Routes:
        """The handlers of the endpoint at ``request.segments``, by method; empty when there is none.

        A handler returns an :class:`Answer` or raises :class:`ServiceError`. An unknown endpoint answers
        404, a method the endpoint lacks 405; anything else a handler raises answers 500.
        """
        return {}

    def error_body(self, error: ServiceError) -> Any:
        """The JSON body of an error answer, in the service's shape."""
        return {"code": error.code, "message": error.message}

    def authorize(self, headers: Mapping[str, str]) -> bool:
        """Tell whether a request's headers carry the credentials; by default the exact bearer token."""
        return headers.get("Authorization") == f"Bearer {self.token}"

    # -- lifecycle --------------------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """``http://host:port``, where the server listens."""
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The base URL clients use: :attr:`origin` and ``base_path``."""
        return self.origin + self.base_path

    def start(self: _S) -> _S:
        """Serve in a daemon thread and return ``self``; raises :class:`RuntimeError` if already serving."""
        self._begin()
        # stop() waits up to one poll interval; keep it short so tests can start and stop one per test.
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.01},
                                        name=f"{type(self).__name__}:{self.url}", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` is called from another thread or Ctrl-C.

        Raises :class:`RuntimeError` if already serving.
        """
        self._begin()
        try:
            self._http.serve_forever(poll_interval=0.2)
        finally:
            self._serving = False
            self._close()

    def stop(self) -> None:
        """Stop serving, close every open connection and the listening socket; safe to call twice."""
        self._stopping.set()
        if self._serving:
            self._serving = False
            self._http.shutdown()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._close()

    def _begin(self) -> None:
        if self._serving or self._stopping.is_set():
            raise RuntimeError("the simulator is already serving or has been stopped")
        self._serving = True

    def _close(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in latency or stall faults
        with self._http.count_lock:
            sockets = list(self._http.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by its client
                sock.shutdown(socket.SHUT_RDWR)
        self._http.server_close()

    def __enter__(self: _S) -> _S:
        return self if self._serving else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    # -- what tests inspect -----------------------------------------------------------------------------

    @property
    def received(self) -> list[ReceivedRequest]:
        """Every request received since start or :meth:`reset_counters`, oldest first."""
        with self._records_lock:
            return list(self._received)

    @property
    def connections_opened(self) -> int:
        """How many TCP connections the server accepted since start or :meth:`reset_counters`."""
        with self._http.count_lock:
            return self._http.connections_opened

    def count(self, method: str | None = None, path_prefix: str = "") -> int:
        """Count received requests with this method (any when ``None``) whose path starts with the prefix."""
        return sum(1 for r in self.received
                   if (method is None or r.method == method.upper()) and r.path.startswith(path_prefix))

    def reset_counters(self) -> None:
        """Forget the received requests and the connection count."""
        with self._records_lock:
            self._received.clear()
        with self._http.count_lock:
            self._http.connections_opened = 0

    # -- HTTP -------------------------------------------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        """Answer one request: record it, apply faults, route it, write the response."""
        request, framed = self._receive(handler)
        if not framed:
            handler.close_connection = True  # the body's end is unknown, so the stream cannot be reused
            error = ServiceError(400, f"send a body of at most {_bytes(self.max_request_body)} with a Content-Length",
                                 code=self.invalid_request_code)
            # Said in the answer too: a client that does not see it would send its next request on this one.
            self._send(handler, 400, json.dumps(self.error_body(error)).encode(),
                       {"Content-Type": "application/json", "Connection": "close"})
            _drain(handler)
            return
        decision = self.faults.decide(request.method, request.path)
        if decision.delay:
            self._stopping.wait(decision.delay)
        rule = decision.rule
        if rule is not None and rule.kind == "drop":
            self._drop(handler, rule)
            return
        if rule is not None and rule.kind in ("status", "malformed"):
            self._send(handler, *self._fault_answer(rule))
            return
        if rule is not None and rule.kind in STREAMS:
            self._stream(handler, *self._fault_stream(rule))
            return
        answer = self._answer(request)
        if rule is not None and rule.kind == "drop_after_store":  # the request took effect, its answer is lost
            self._drop(handler, rule)
            return
        body = json.dumps(answer.payload).encode()
        self._send(handler, answer.status, body, {"Content-Type": "application/json", **answer.headers},
                   trickle=rule)

    def _receive(self, handler: _Handler) -> tuple[ReceivedRequest, bool]:
        """Read and record one request; tell whether its body was framed so that it could be read."""
        path, _, raw_query = handler.path.partition("?")
        length = handler.headers.get("Content-Length", "0")
        framed = (length.isdigit() and int(length) <= self.max_request_body
                  and "Transfer-Encoding" not in handler.headers)
        raw = handler.rfile.read(int(length)) if framed else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:  # recorded as text, so a test can see what a client sent
            body = raw.decode("utf-8", "replace")
        headers = dict(handler.headers.items())
        request = ReceivedRequest(
            handler.command, path, dict(parse_qsl(raw_query, keep_blank_values=True)),
            {k: REDACTED if k.lower() == "authorization" else v for k, v in headers.items()},
            body, self.authorize(headers),
        )
        with self._records_lock:
            self._received.append(request)
        return request, framed

    def _answer(self, request: ReceivedRequest) -> Answer:
        """What the service answers: refused without credentials, else what its route says."""
        try:
            if not request.authorized:
                raise ServiceError(401, "invalid or missing bearer token in the Authorization header")
            routes = self.routes(request)
            if not routes:
                raise ServiceError(404, f"no such endpoint: {request.method} {request.path}")
            if request.method not in routes:
                raise ServiceError(405, f"{request.method} is not allowed on {request.path}; "
                                        f"use {', '.join(routes)}")
            return routes[request.method]()
        except ServiceError as error:
            return Answer(error.status, self.error_body(error))
        except Exception as exc:  # a simulator bug: answer like a server that leaks its class names
            log.exception("simulator error on %s %s", request.method, request.path)
            return Answer(500, self.error_body(ServiceError(500, f"{type(exc).__name__}: {exc}")))

    def _fault_answer(self, rule: FaultRule) -> tuple[int, bytes, dict[str, str]]:
        """The status, body and headers of a ``status`` or ``malformed`` fault."""
        assert rule.status is not None  # FaultRule sets it for both kinds
        if rule.kind == "malformed":
            content_type, body = self.malformed_bodies[rule.variant]
            return rule.status, body, {"Content-Type": content_type}
        headers = {"Content-Type": "application/json"}
        if rule.retry_after is not None:
            headers["Retry-After"] = f"{rule.retry_after:g}"
        if rule.status == 429:
            reset = int(time.time() + (rule.retry_after or 0)) + 1
            headers.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
            message = "rate limit exceeded, retry later"
        else:
            message = HTTPStatus(rule.status).phrase.lower()
        return rule.status, json.dumps(self.error_body(ServiceError(rule.status, message))).encode(), headers

    def _fault_stream(self, rule: FaultRule) -> tuple[dict[str, str], Iterator[bytes]]:
        """The headers and the body pieces of a ``huge``, ``gzip_bomb`` or ``endless`` fault.

        A ``Transfer-Encoding: chunked`` header means the pieces are framed as chunks.
        """
        json_type = {"Content-Type": "application/json"}
        if rule.kind == "huge":
            assert rule.size is not None  # FaultRule requires it
            return {**json_type, "Content-Length": str(rule.size)}, padding(rule.size)
        if rule.kind == "gzip_bomb":
            assert rule.size is not None
            headers = {**json_type, "Content-Encoding": "gzip", "Transfer-Encoding": "chunked"}
            return headers, gzipped(padding(rule.size))
        assert rule.kind == "endless", rule.kind
        return {**json_type, "Transfer-Encoding": "chunked"}, endless(*self.endless_list)

    def _drop(self, handler: _Handler, rule: FaultRule) -> None:
        if rule.stall:
            self._stopping.wait(rule.stall)
        handler.close_connection = True

    def _send_json(self, handler: _Handler, status: int, payload: Any) -> None:
        self._send(handler, status, json.dumps(payload).encode(), {"Content-Type": "application/json"})

    def _send(self, handler: _Handler, status: int, body: bytes, headers: Mapping[str, str], *,
              trickle: FaultRule | None = None) -> None:
        """Write one answer; a ``trickle`` rule writes its head or its body one byte at a time."""
        headers = {**self._rate_headers(), "Content-Length": str(len(body)), **headers}
        plain = handler.wfile
        slow = Trickle(plain, trickle.delay, self._stopping) if trickle is not None else plain
        try:
            handler.wfile = slow if trickle is not None and trickle.part == "headers" else plain
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            (slow if trickle is not None and trickle.part == "body" else plain).write(body)
        except OSError:  # the client gave up (a timeout shorter than an injected latency or trickle)
            handler.close_connection = True
        finally:
            handler.wfile = plain

    def _stream(self, handler: _Handler, headers: Mapping[str, str], pieces: Iterator[bytes]) -> None:
        """Write a 200 answer whose body is generated while it is sent, until the client goes away."""
        chunked = headers.get("Transfer-Encoding") == "chunked"
        try:
            handler.send_response(200)
            for name, value in {**self._rate_headers(), **headers}.items():
                handler.send_header(name, value)
            handler.end_headers()
            for piece in pieces:
                if self._stopping.is_set():
                    handler.close_connection = True
                    return
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                handler.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client stopped reading: what a client that caps answers does
            handler.close_connection = True

    def _rate_headers(self) -> dict[str, str]:
        if self.rate_limit is None:
            return {}
        now = time.time()
        with self._records_lock:
            end, used = self._rate_window
            if now >= end:
                end, used = float(int(now) + RATE_WINDOW), 0
            self._rate_window = (end, used + 1)
        remaining = max(0, self.rate_limit - used - 1)
        return {"X-RateLimit-Limit": str(self.rate_limit), "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(int(end))}


def _bytes(size: int) -> str:
    return f"{size >> 20} MiB" if size % (1 << 20) == 0 else f"{size} bytes"


class _HTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server that counts the TCP connections it accepts and can close them all."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], simulator: SimServer) -> None:
        self.simulator = simulator
        self.connections_opened = 0
        self.open_sockets: set[socket.socket] = set()
        self.count_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        with self.count_lock:
            self.connections_opened += 1
            self.open_sockets.add(sock)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        with self.count_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanishes mid-request is normal here (timeouts, drop faults): no stderr traceback.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to the simulator; keeps connections alive between requests."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are written separately; don't let Nagle hold the body
    timeout = 60  # an idle keep-alive connection is closed after this many seconds
    server: _HTTPServer

    def _dispatch(self) -> None:
        self.server.simulator._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def version_string(self) -> str:
        return f"{self.server.simulator.server_version} {self.sys_version}"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def _drain(handler: BaseHTTPRequestHandler, seconds: float = 0.5) -> None:
    """Half-close after an answer to a request whose body was not read, and read what the client still
    sends for a moment: closing with unread input would reset the connection, and the client could lose
    the answer before it reads it."""
    sock = handler.connection
    try:
        handler.wfile.flush()
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(seconds)
        while sock.recv(1 << 16):
            pass
    except OSError:
        pass  # the client closed first, or took too long: nothing more to save
