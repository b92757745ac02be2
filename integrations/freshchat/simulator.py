"""Serve a Freshchat-compatible REST API v2 on loopback, with seeded data and injectable faults.

:class:`Simulator` speaks the wire mapping that ``client.py`` sends over real HTTP/1.1 with keep-alive, so
a client session reuses one TCP connection. It checks ``Authorization: Bearer <token>``, serves the data of
:func:`~integrations.freshchat.simdata.build_dataset`, paginates with Freshchat's ``pagination`` and
``links``, answers errors with Freshchat's ``{"code", "status", "message"}`` body, and consults a
:class:`~integrations.freshchat.simfaults.FaultPlan` before every answer. It records every request it receives
(the token redacted) so tests can check what a client sent.

Routes (all under ``/v2``): ``GET conversations`` (``page``, ``items_per_page``, ``status``, ``inbox_id``),
``POST conversations``, ``GET conversations/{id}``, ``GET conversations/{id}/messages``, ``GET agents``,
``GET agents/{id}``, ``GET groups``, ``GET channels``, ``GET users/{id}``, ``GET accounts/configuration``.
Created conversations answer ``201``; an unknown user or channel in a create answers ``404``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from .simdata import Dataset, build_dataset, new_conversation
from .simfaults import STREAMS, FaultPlan, FaultRule

log = logging.getLogger(__name__)

MAX_ITEMS_PER_PAGE = 100
DEFAULT_ITEMS_PER_PAGE = 10
STATUSES = ("new", "open", "pending", "resolved", "closed")
# Reported in X-RateLimit-* headers per one-minute window; only injected faults ever answer 429.
RATE_LIMIT = 5000
MAX_BODY = 1 << 20
REDACTED = "REDACTED"

Answer = tuple[int, Any]


class ApiError(Exception):
    """A Freshchat error answer: the HTTP ``code``, the ``status`` enum and a ``message``."""

    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "status": self.status, "message": self.message}


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the simulator received it.

    ``path`` is as sent (percent-encoding kept, no query); ``query`` keeps the last value of each name;
    ``headers`` has ``Authorization`` replaced by ``"REDACTED"``; ``body`` is the parsed JSON, the raw text
    when it is not JSON, or ``None`` when empty; ``authorized`` tells whether the token matched.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    authorized: bool


def _bad(message: str) -> ApiError:
    return ApiError(400, "INVALID_VALUE", message)


def _int_param(query: dict[str, str], name: str, default: int, maximum: int | None = None) -> int:
    """Read a positive integer query parameter; raise a 400 ApiError when it is not one."""
    text = query.get(name)
    if text is None:
        return default
    bounds = f"from 1 to {maximum}" if maximum else "of at least 1"
    if not text.isdigit() or int(text) < 1 or (maximum is not None and int(text) > maximum):
        raise _bad(f"{name} must be an integer {bounds}, got {text!r}")
    return int(text)


def paginate(name: str, items: list[Any], query: dict[str, str], base: str,
             filters: dict[str, str] | None = None) -> dict[str, Any]:
    """Return one page of ``items`` in Freshchat's list envelope ``{name: [...], pagination, links}``.

    ``filters`` are repeated in the links' hrefs, which put their parameters in alphabetical order as
    Freshchat does (``/v2/agents?items_per_page=10&page=2``).
    """
    page = _int_param(query, "page", 1)
    per_page = _int_param(query, "items_per_page", DEFAULT_ITEMS_PER_PAGE, MAX_ITEMS_PER_PAGE)
    total_pages = -(-len(items) // per_page)
    last = max(total_pages, 1)

    def link(number: int, rel: str) -> dict[str, str]:
        params = {**(filters or {}), "items_per_page": per_page, "page": number}
        return {"href": f"{base}?{urlencode(sorted(params.items()))}", "rel": rel, "type": "GET"}

    links = {"first_page": link(1, "first_page")}
    if page > 1:
        links["previous_page"] = link(min(page - 1, last), "previous_page")
    if page < total_pages:
        links["next_page"] = link(page + 1, "next_page")
    links["last_page"] = link(last, "last_page")
    return {
        name: items[(page - 1) * per_page: page * per_page],
        "pagination": {"total_items": len(items), "total_pages": total_pages, "current_page": page,
                       "items_per_page": per_page},
        "links": links,
    }


class _Server(ThreadingHTTPServer):
    """A threaded HTTP server that counts the TCP connections it accepts and can close them all."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
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
    server_version = "FreshchatSimulator/1.0"
    disable_nagle_algorithm = True  # headers and body are written separately; don't let Nagle hold the body
    timeout = 60  # an idle keep-alive connection is closed after this many seconds
    server: _Server

    def _dispatch(self) -> None:
        self.server.simulator._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class Simulator:
    """A Freshchat REST API v2 server on ``host:port`` (``port=0`` picks a free one), bound on creation.

    ``token`` defaults to the dataset's JWT-shaped token, whose ``sub`` claim is an agent id, so
    ``GET /v2/agents/{sub}`` resolves the token's holder. ``faults`` is a :class:`FaultPlan` or a spec for
    :meth:`FaultPlan.parse`; it stays reachable as ``sim.faults`` to change between requests.
    """

    def __init__(self, *, seed: int = 0, token: str | None = None, host: str = "127.0.0.1", port: int = 0,
                 faults: FaultPlan | str | None = None) -> None:
        self.seed = seed
        self.dataset: Dataset = build_dataset(seed)
        self.token = token if token is not None else self.dataset.token
        if isinstance(faults, str):
            faults = FaultPlan.parse(faults)
        self.faults = faults if faults is not None else FaultPlan()
        self._lock = threading.Lock()
        self._received: list[ReceivedRequest] = []
        self._created: list[dict[str, Any]] = []
        self._rng = random.Random(f"created:{seed}")
        self._conversations = list(self.dataset.conversations)
        self._messages = {cid: list(thread) for cid, thread in self.dataset.messages.items()}
        self._index = {
            kind: {item["id"]: item for item in items}
            for kind, items in (("agent", self.dataset.agents), ("user", self.dataset.users),
                                ("channel", self.dataset.channels))
        }
        self._index["conversation"] = {c["conversation_id"]: c for c in self._conversations}
        self._next_internal_id = max(c["conversation_internal_id"] for c in self._conversations)
        self._rate_window = (0.0, 0)  # (window end as Unix time, requests answered in the window)
        self._stopping = threading.Event()
        self._serving = False
        self._thread: threading.Thread | None = None  # the daemon thread of start()
        self._server = _Server((host, port), self)

    # -- lifecycle --------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL clients use, ending in ``/v2``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v2"

    def start(self) -> Simulator:
        """Serve in a daemon thread and return ``self``; raises :class:`RuntimeError` if already serving."""
        self._begin()
        # stop() waits up to one poll interval; keep it short so tests can start and stop one per test.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        name=f"freshchat-simulator:{self.url}", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` is called from another thread or Ctrl-C.

        Raises :class:`RuntimeError` if already serving.
        """
        self._begin()
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._serving = False
            self._close()

    def stop(self) -> None:
        """Stop serving, close every open connection and the listening socket; safe to call twice."""
        self._stopping.set()
        if self._serving:
            self._serving = False
            self._server.shutdown()
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
        with self._server.count_lock:
            sockets = list(self._server.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by its client
                sock.shutdown(socket.SHUT_RDWR)
        self._server.server_close()

    def __enter__(self) -> Simulator:
        return self if self._serving else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Simulator {self.url} seed={self.seed}>"

    # -- what tests inspect -----------------------------------------------------------------------------

    @property
    def received(self) -> list[ReceivedRequest]:
        """Every request received since start or :meth:`reset_counters`, oldest first."""
        with self._lock:
            return list(self._received)

    @property
    def created(self) -> list[dict[str, Any]]:
        """The conversations created through ``POST /v2/conversations``, oldest first."""
        with self._lock:
            return list(self._created)

    @property
    def connections_opened(self) -> int:
        """How many TCP connections the server accepted since start or :meth:`reset_counters`."""
        with self._server.count_lock:
            return self._server.connections_opened

    def count(self, method: str | None = None, path_prefix: str = "") -> int:
        """Count received requests with this method (any when ``None``) whose path starts with the prefix."""
        return sum(1 for r in self.received
                   if (method is None or r.method == method.upper()) and r.path.startswith(path_prefix))

    def reset_counters(self) -> None:
        """Forget the received requests and the connection count (created conversations stay)."""
        with self._lock:
            self._received.clear()
        with self._server.count_lock:
            self._server.connections_opened = 0

    # -- HTTP -------------------------------------------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        """Answer one request: record it, apply faults, route it, write the response."""
        method = handler.command
        path, _, raw_query = handler.path.partition("?")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        length = handler.headers.get("Content-Length", "0")
        framed = length.isdigit() and int(length) <= MAX_BODY and "Transfer-Encoding" not in handler.headers
        raw = handler.rfile.read(int(length)) if framed else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:  # recorded as text, so a test can see what a client sent
            body = raw.decode("utf-8", "replace")
        authorized = handler.headers.get("Authorization") == f"Bearer {self.token}"
        headers = {k: REDACTED if k.lower() == "authorization" else v for k, v in handler.headers.items()}
        with self._lock:
            self._received.append(ReceivedRequest(method, path, query, headers, body, authorized))
        if not framed:
            handler.close_connection = True  # the body's end is unknown, so the stream cannot be reused
            self._send_json(handler, 400, _bad("send a body of at most 1 MiB with a Content-Length").body())
            return

        decision = self.faults.decide(method, path)
        if decision.delay:
            self._stopping.wait(decision.delay)
        rule = decision.rule
        if rule is not None and rule.kind == "drop":
            self._drop(handler, rule)
            return
        if rule is not None and rule.kind in ("status", "malformed"):
            self._send(handler, *rule.answer(time.time()))
            return
        if rule is not None and rule.kind in STREAMS:
            self._stream(handler, rule)
            return
        try:
            status, payload = self._answer(method, path, query, body, authorized)
        except ApiError as exc:
            status, payload = exc.code, exc.body()
        except Exception as exc:  # a simulator bug: answer like a server that leaks its class names
            log.exception("simulator error on %s %s", method, path)
            error = ApiError(500, "INTERNAL_SERVER_ERROR", f"{type(exc).__name__}: {exc}")
            status, payload = 500, error.body()
        if rule is not None and rule.kind == "drop_after_store":  # the request took effect, its answer is lost
            self._drop(handler, rule)
            return
        self._send_json(handler, status, payload, trickle=rule)

    def _drop(self, handler: _Handler, rule: FaultRule) -> None:
        if rule.stall:
            self._stopping.wait(rule.stall)
        handler.close_connection = True

    def _send_json(self, handler: _Handler, status: int, payload: Any, *, trickle: FaultRule | None = None) -> None:
        body = json.dumps(payload).encode()
        self._send(handler, status, body, {"Content-Type": "application/json"}, trickle=trickle)

    def _send(self, handler: _Handler, status: int, body: bytes, headers: dict[str, str], *,
              trickle: FaultRule | None = None) -> None:
        """Write one answer; a ``trickle`` rule writes its head or its body one byte at a time."""
        headers = {**self._rate_headers(), "Content-Length": str(len(body)), **headers}
        plain = handler.wfile
        slow = _Trickle(plain, trickle.delay, self._stopping) if trickle is not None else plain
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

    def _stream(self, handler: _Handler, rule: FaultRule) -> None:
        """Write a 200 answer whose body the rule generates while it is sent, until the client goes away."""
        headers, pieces = rule.stream()
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
        now = time.time()
        with self._lock:
            end, used = self._rate_window
            if now >= end:
                end, used = float(int(now) + 60), 0
            self._rate_window = (end, used + 1)
        remaining = max(0, RATE_LIMIT - used - 1)
        return {"X-RateLimit-Limit": str(RATE_LIMIT), "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(int(end))}

    # -- the API ----------------------------------------------------------------------------------------

    def _answer(self, method: str, path: str, query: dict[str, str], body: Any, authorized: bool) -> Answer:
        if not authorized:
            raise ApiError(401, "UNAUTHORIZED", "invalid or missing bearer token in the Authorization header")
        routes = self._routes([unquote(segment) for segment in path.split("/")[1:]], query, body)
        if not routes:
            raise ApiError(404, "NOT_FOUND", f"no such endpoint: {method} {path}")
        if method not in routes:
            allowed = ", ".join(routes)
            raise ApiError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed on {path}; use {allowed}")
        return routes[method]()

    def _routes(self, segments: list[str], query: dict[str, str],
                body: Any) -> dict[str, Callable[[], Answer]]:
        """The handlers of the endpoint at ``segments`` (percent-decoded), by method; empty when none."""
        match segments:
            case ["v2", "conversations"]:
                return {"GET": lambda: self._list_conversations(query), "POST": lambda: self._create(body)}
            case ["v2", "conversations", cid]:
                return {"GET": lambda: (200, self._find("conversation", cid))}
            case ["v2", "conversations", cid, "messages"]:
                return {"GET": lambda: self._list_messages(cid, query)}
            case ["v2", "agents"]:
                return {"GET": lambda: self._list("agents", query)}
            case ["v2", "agents", agent_id]:
                return {"GET": lambda: (200, self._find("agent", agent_id))}
            case ["v2", "groups"]:
                return {"GET": lambda: self._list("groups", query)}
            case ["v2", "channels"]:
                return {"GET": lambda: self._list("channels", query)}
            case ["v2", "users", user_id]:
                return {"GET": lambda: (200, self._find("user", user_id))}
            case ["v2", "accounts", "configuration"]:
                return {"GET": lambda: (200, self.dataset.account)}
        return {}

    def _list(self, name: str, query: dict[str, str]) -> Answer:
        return 200, paginate(name, getattr(self.dataset, name), query, f"/v2/{name}")

    def _find(self, kind: str, item_id: str) -> dict[str, Any]:
        with self._lock:
            item = self._index[kind].get(item_id)
        if item is None:
            raise ApiError(404, f"{kind.upper()}_NOT_FOUND", f"{kind} not found")
        return item

    def _list_conversations(self, query: dict[str, str]) -> Answer:
        filters = {name: query[name] for name in ("status", "inbox_id") if name in query}
        if "status" in filters and filters["status"] not in STATUSES:
            raise _bad(f"status must be one of {', '.join(STATUSES)}, got {filters['status']!r}")
        with self._lock:
            conversations = list(self._conversations)
        matching = [c for c in conversations
                    if c["status"] == filters.get("status", c["status"])
                    and c["channel_id"] == filters.get("inbox_id", c["channel_id"])]
        return 200, paginate("conversations", matching, query, "/v2/conversations", filters)

    def _list_messages(self, cid: str, query: dict[str, str]) -> Answer:
        """Messages newest first, paged like Freshchat's with a single ``link`` to the next page."""
        self._find("conversation", cid)
        with self._lock:
            thread = self._messages.get(cid, [])[::-1]
        page = paginate("messages", thread, query, f"/v2/conversations/{quote(cid, safe='')}/messages")
        answer: dict[str, Any] = {"messages": page["messages"]}
        if "next_page" in page["links"]:
            answer["link"] = page["links"]["next_page"]
        return 200, answer

    def _create(self, body: Any) -> Answer:
        """Validate and store a conversation as ``POST /v2/conversations`` does; answer 201 with it."""
        if not isinstance(body, dict):
            raise _bad("the request body must be a JSON object")
        users, messages = body.get("users"), body.get("messages")
        channel_id = body.get("channel_id", self.dataset.channels[0]["id"])
        if not isinstance(users, list) or not users or not all(
                isinstance(u, dict) and isinstance(u.get("id"), str) for u in users):
            raise _bad("users must be a non-empty list of {\"id\": <user id>}")
        if not isinstance(messages, list) or not messages:
            raise _bad("messages must be a non-empty list; a conversation starts with a message")
        if not isinstance(channel_id, str):
            raise _bad("channel_id must be a string")
        user_ids = [u["id"] for u in users]
        for index, message in enumerate(messages):
            _check_message(message, f"messages[{index}]", user_ids, self._index["agent"])
        for user_id in user_ids:
            self._find("user", user_id)
        self._find("channel", channel_id)
        with self._lock:
            self._next_internal_id += 1
            conv, thread = new_conversation(self.dataset.account, self._rng, self._next_internal_id,
                                            channel_id, user_ids, messages, datetime.now(timezone.utc))
            self._conversations.insert(0, conv)
            self._index["conversation"][conv["conversation_id"]] = conv
            self._messages[conv["conversation_id"]] = thread
            self._created.append(conv)
        return 201, {**conv, "users": [{"id": user_id} for user_id in user_ids], "messages": thread}


class _Trickle:
    """A writer that sends what it is given one byte every ``delay`` seconds, until the simulator stops."""

    def __init__(self, wfile: Any, delay: float, stopping: threading.Event) -> None:
        self._wfile, self._delay, self._stopping = wfile, delay, stopping

    def write(self, data: bytes) -> int:
        for index in range(len(data)):
            if self._stopping.wait(self._delay):
                raise ConnectionAbortedError("the simulator is stopping")
            self._wfile.write(data[index:index + 1])
        return len(data)


def _check_message(message: Any, where: str, user_ids: list[str], agents: dict[str, Any]) -> None:
    """Raise a 400 ApiError unless ``message`` is a message Freshchat would accept in a create."""
    if not isinstance(message, dict):
        raise _bad(f"{where} must be an object")
    parts = message.get("message_parts")
    if not isinstance(parts, list) or not parts:
        raise _bad(f"{where}.message_parts must be a non-empty list")
    for index, part in enumerate(parts):
        text = part.get("text") if isinstance(part, dict) else None
        content = text.get("content") if isinstance(text, dict) else None
        if not isinstance(content, str) or not content.strip():
            raise _bad(f"{where}.message_parts[{index}].text.content must be a non-empty string")
    if message.get("message_type", "normal") not in ("normal", "private"):
        raise _bad(f"{where}.message_type must be normal or private")
    actor_type, actor_id = message.get("actor_type"), message.get("actor_id")
    if actor_type not in ("user", "agent"):
        raise _bad(f"{where}.actor_type must be user or agent")
    if not isinstance(actor_id, str) or actor_id not in (user_ids if actor_type == "user" else agents):
        raise _bad(f"{where}.actor_id must be the id of one of the conversation's users or of an agent")
