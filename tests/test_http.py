"""The generic HTTP policy: headers, timeouts, retries, waits, transport errors and token hygiene."""

from __future__ import annotations

import gzip
import json
import logging
import os
import random
import socket
import ssl
import threading
import time
import traceback
import tracemalloc
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, quote_plus

import pytest
import requests
import responses
from fake_time import FakeTime
from responses import matchers
from urllib3.exceptions import NameResolutionError, ProtocolError

from luabridge._errors import LimitExceeded, RemoteError
from luabridge._http import OUTCOME_UNKNOWN, POOL_SIZE, _CuttableConnection, _Watchdog, new_session, redact, send
from luabridge._registry import Account, CallContext, Secret

TOKEN = "tok-3f9a-SECRET-77c1"
BASE = "https://api.example.test/v1"
URL = f"{BASE}/items"
WALL = 1_700_000_000.0  # the fake Unix time HTTP dates and reset headers are compared with


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def context(fake: FakeTime, *, seconds_left: float = 30.0, token: str | None = TOKEN) -> CallContext:
    account = Account("demo", "default", BASE, Secret(token) if token else None)
    return CallContext(account=account, deadline=fake.now + seconds_left)


def call(fake: FakeTime, method: str = "GET", url: str = URL, *, ctx: CallContext | None = None, **options):
    """``send`` with the fake clock, a fixed wall clock and no jitter (waits are the upper bounds)."""
    session = options.pop("session", None) or new_session()
    return send(
        session, method, url, ctx=ctx or context(fake), sleep=fake.sleep, clock=fake.clock,
        wall_clock=lambda: WALL, jitter=lambda: 1.0, **options,
    )


def test_new_session_never_retries_by_itself_and_ignores_the_environment():
    session = new_session()
    adapter = session.get_adapter("https://api.example.test/")
    assert session.trust_env is False
    assert adapter.max_retries.total == 0 and adapter.max_retries.read is False
    assert adapter._pool_maxsize == POOL_SIZE >= 64  # concurrent runs on one account keep their connections
    assert session.get_adapter("http://127.0.0.1/") is adapter


def test_a_read_sends_the_token_accept_and_query_with_both_timeouts(fake, mock):
    mock.get(URL, json={"ok": True}, match=[
        matchers.query_param_matcher({"page": "2", "items_per_page": "10"}),
        matchers.header_matcher({"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}),
        matchers.request_kwargs_matcher({"timeout": (5.0, 30.0), "proxies": {}}),
    ])
    ctx = context(fake)
    response = call(fake, ctx=ctx, params={"page": 2, "items_per_page": 10})
    assert response.json() == {"ok": True}
    assert ctx.http_status == 200
    assert "Content-Type" not in mock.calls[0].request.headers


def test_a_write_sends_its_json_body_with_a_content_type(fake, mock):
    mock.post(URL, json={}, status=201, match=[
        matchers.json_params_matcher({"name": "x"}),
        matchers.header_matcher({"Authorization": f"Bearer {TOKEN}", "Accept": "application/json",
                                 "Content-Type": "application/json"}),
    ])
    assert call(fake, "POST", json={"name": "x"}).status_code == 201


def test_an_account_without_token_sends_no_authorization(fake, mock):
    mock.get(URL, json={})
    call(fake, ctx=context(fake, token=None))
    assert "Authorization" not in mock.calls[0].request.headers


def test_a_redirect_is_returned_not_followed(fake, mock):
    mock.get(URL, status=302, headers={"Location": "https://elsewhere.test/steal"})
    response = call(fake)
    assert response.status_code == 302
    assert len(mock.calls) == 1


def test_each_attempt_is_bounded_by_the_time_left(fake, mock):
    mock.get(URL, json={}, match=[matchers.request_kwargs_matcher({"timeout": (2.5, 2.5)})])
    call(fake, ctx=context(fake, seconds_left=2.5))


def test_no_request_is_sent_when_no_time_is_left(fake, mock):
    with pytest.raises(LimitExceeded) as caught:
        call(fake, ctx=context(fake, seconds_left=0))
    assert caught.value.message == "the run's time limit was reached before calling api.example.test"
    assert caught.value.kind == "timeout"
    assert len(mock.calls) == 0


RETRIES = [
    # method, answers (status, headers), the waits slept, how many requests were sent
    ("GET", [(503, {}), (200, {})], [0.25], 2),
    ("GET", [(500, {}), (502, {}), (504, {}), (200, {})], [0.25, 0.5, 1.0], 4),
    ("GET", [(429, {"Retry-After": "2"}), (200, {})], [2.0], 2),
    ("GET", [(429, {"Retry-After": formatdate(WALL + 3, usegmt=True)}), (200, {})], [3.0], 2),
    ("GET", [(429, {"Retry-After": formatdate(WALL - 60, usegmt=True)}), (200, {})], [0.0], 2),
    ("GET", [(429, {"X-RateLimit-Reset": str(int(WALL + 4))}), (200, {})], [4.0], 2),
    ("GET", [(429, {"X-RateLimit-Reset": "7"}), (200, {})], [7.0], 2),
    ("GET", [(429, {"Retry-After": "soon"}), (200, {})], [0.25], 2),
    ("GET", [(503, {"X-RateLimit-Reset": str(int(WALL + 9))}), (200, {})], [0.25], 2),
    ("GET", [(404, {})], [], 1),
    ("POST", [(429, {"Retry-After": "1"}), (201, {})], [1.0], 2),
    ("POST", [(503, {})], [], 1),
    ("POST", [(500, {})], [], 1),
]


@pytest.mark.parametrize(("method", "answers", "waits", "sent"), RETRIES)
def test_retries_follow_the_method_and_the_server(fake, mock, method, answers, waits, sent):
    for status, headers in answers:
        mock.add(method, URL, status=status, headers=headers, json={})
    ctx = context(fake)
    response = call(fake, method, ctx=ctx, json={} if method == "POST" else None)
    assert response.status_code == answers[-1][0] == ctx.http_status
    assert fake.slept == waits
    assert len(mock.calls) == sent


def test_the_last_answer_is_returned_when_attempts_run_out(fake, mock, caplog):
    mock.get(URL, status=503, json={})
    caplog.set_level(logging.DEBUG, logger="luabridge.http")
    assert call(fake).status_code == 503
    assert len(mock.calls) == 4
    assert [record.getMessage() for record in caplog.records] == [
        f"GET {URL}: HTTP 503; retrying in {wait:.2f} s (attempt {n} of 4)"
        for n, wait in ((2, 0.25), (3, 0.5), (4, 1.0))
    ]


@pytest.mark.parametrize(("status", "headers", "left", "message"), [
    (429, {"Retry-After": "120"}, 3.2,
     "rate limited (HTTP 429); the server asks to retry after 120 s but only 3.2 s are left in this run"),
    (429, {"X-RateLimit-Reset": str(int(WALL + 45))}, 20,
     "rate limited (HTTP 429); the server asks to retry after 45 s but only 20 s are left in this run"),
    (503, {"Retry-After": "60"}, 10,
     "HTTP 503; the server asks to retry after 60 s but only 10 s are left in this run"),
])
def test_a_wait_past_the_deadline_fails_at_once(fake, mock, status, headers, left, message):
    mock.get(URL, status=status, headers=headers, json={})
    with pytest.raises(RemoteError) as caught:
        call(fake, ctx=context(fake, seconds_left=left))
    assert (caught.value.message, caught.value.status) == (message, status)
    assert fake.slept == []


def test_a_backoff_that_cannot_fit_returns_the_last_answer(fake, mock):
    mock.get(URL, status=503, json={})
    assert call(fake, ctx=context(fake, seconds_left=0.2)).status_code == 503
    assert fake.slept == []


def _refused_by_name() -> requests.ConnectionError:
    from urllib3.exceptions import MaxRetryError

    reason = NameResolutionError("api.example.test", None, socket.gaierror(-2, "Name or service not known"))
    return requests.ConnectionError(MaxRetryError(None, URL, reason))


def _caused_by(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


CERT_REFUSED = "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"

TRANSPORT = [
    # method, the exception requests raises, requests sent, the message
    ("GET", requests.ConnectTimeout("x"), 4,
     "timed out after 5.0 s connecting to api.example.test (gave up after 4 attempts)"),
    ("POST", requests.ConnectTimeout("x"), 4,
     "timed out after 5.0 s connecting to api.example.test (gave up after 4 attempts)"),
    ("GET", _refused_by_name(), 4,
     "could not connect to api.example.test: host name not found (gave up after 4 attempts)"),
    ("POST", _refused_by_name(), 4,
     "could not connect to api.example.test: host name not found (gave up after 4 attempts)"),
    ("GET", requests.ReadTimeout("x"), 4,
     "timed out after 30 s waiting for api.example.test (gave up after 4 attempts)"),
    ("POST", requests.ReadTimeout("x"), 1,
     f"timed out after 30 s waiting for api.example.test; {OUTCOME_UNKNOWN}"),
    ("GET", requests.ConnectionError(ProtocolError("Connection aborted.")), 4,
     "the connection to api.example.test broke before a complete answer arrived (gave up after 4 attempts)"),
    ("POST", requests.ConnectionError(ProtocolError("Connection aborted.")), 1,
     f"the connection to api.example.test broke before a complete answer arrived; {OUTCOME_UNKNOWN}"),
    ("POST", _caused_by(requests.exceptions.SSLError("x"), ssl.SSLCertVerificationError(1, CERT_REFUSED)), 1,
     f"could not make a secure connection to api.example.test: {CERT_REFUSED}"),
    ("GET", requests.exceptions.SSLError("EOF occurred in violation of protocol"), 1,
     "could not make a secure connection to api.example.test: EOF occurred in violation of protocol"),
    ("POST", requests.exceptions.SSLError("EOF occurred in violation of protocol"), 1,
     "could not make a secure connection to api.example.test: EOF occurred in violation of protocol; "
     + OUTCOME_UNKNOWN),
    ("GET", requests.exceptions.InvalidHeader("bad header"), 1,
     "the request to api.example.test failed: bad header"),
]


@pytest.mark.parametrize(("method", "error", "sent", "message"), TRANSPORT)
def test_transport_failures_are_retried_only_when_safe(fake, mock, method, error, sent, message):
    mock.add(method, URL, body=error)
    with pytest.raises(RemoteError) as caught:
        call(fake, method, ctx=context(fake, seconds_left=60), json={} if method == "POST" else None)
    assert caught.value.message == message
    assert caught.value.status is None
    assert isinstance(caught.value.__cause__, type(error))
    assert len(mock.calls) == sent


def test_a_transport_retry_that_cannot_fit_says_so(fake, mock):
    mock.get(URL, body=requests.ConnectTimeout("x"))
    with pytest.raises(RemoteError) as caught:
        call(fake, ctx=context(fake, seconds_left=0.45))
    assert caught.value.message == (
        "timed out after 0.2 s (the time left in this run) connecting to api.example.test "
        "(gave up after 2 attempts); no time left in this run to try again"
    )


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_refused_connection_is_retried_even_for_a_write(fake, method):
    with socket.socket() as sock:  # bound then closed: nothing listens on this loopback port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RemoteError) as caught:
        call(fake, method, f"http://127.0.0.1:{port}/v1/items", json={} if method == "POST" else None)
    assert caught.value.message == (
        f"could not connect to 127.0.0.1:{port}: connection refused (gave up after 4 attempts)"
    )
    assert fake.slept == [0.25, 0.5, 1.0]


@pytest.fixture
def silent_server():
    """A loopback port that accepts connections (into its backlog) and never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as server:
        yield server


def _accepted(server: socket.socket) -> int:
    """How many connections reached the backlog (all are there once the client has given up)."""
    server.settimeout(0.05)
    count = 0
    try:
        while True:
            server.accept()[0].close()
            count += 1
    except TimeoutError:
        return count


@pytest.mark.parametrize(("method", "attempts", "message"), [
    ("GET", 2, "timed out after 0.1 s waiting for 127.0.0.1:{port} (gave up after 2 attempts)"),
    ("POST", 1, "timed out after 0.1 s waiting for 127.0.0.1:{port}; " + OUTCOME_UNKNOWN),
])
def test_a_real_read_timeout(fake, silent_server, method, attempts, message):
    port = silent_server.getsockname()[1]
    with pytest.raises(RemoteError) as caught:
        call(fake, method, f"http://127.0.0.1:{port}/v1/items", json={} if method == "POST" else None,
             read_timeout=0.1, max_attempts=2)
    assert caught.value.message == message.format(port=port)
    assert _accepted(silent_server) == attempts


@pytest.fixture
def hanging_up_server():
    """A loopback server that reads each request and closes the connection without answering."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.02)
    seen: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                seen.append(conn.recv(65536))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join(timeout=1)
    server.close()


@pytest.mark.parametrize(("method", "attempts", "message"), [
    ("GET", 2, "the connection to 127.0.0.1:{port} broke before a complete answer arrived "
               "(gave up after 2 attempts)"),
    ("POST", 1, "the connection to 127.0.0.1:{port} broke before a complete answer arrived; "
                + OUTCOME_UNKNOWN),
])
def test_a_connection_closed_after_sending(fake, hanging_up_server, method, attempts, message):
    port, seen = hanging_up_server
    with pytest.raises(RemoteError) as caught:
        call(fake, method, f"http://127.0.0.1:{port}/v1/items", json={} if method == "POST" else None,
             max_attempts=2)
    assert caught.value.message == message.format(port=port)
    assert len(seen) == attempts


@pytest.mark.parametrize(("text", "secrets", "expected"), [
    ("Bearer abc.def", ("abc.def",), "Bearer ***"),
    ("a%2Fb and a/b", ("a/b",), "*** and ***"),
    ("nothing here", ("", None), "nothing here"),
    ("x1 y2", ("x1", "y2"), "*** ***"),
])
def test_redact(text, secrets, expected):
    assert redact(text, *secrets) == expected


def test_the_token_is_scrubbed_from_a_foreign_error_chain(fake, mock):
    inner = ValueError(f"upstream echoed Authorization: Bearer {TOKEN}")
    try:
        raise inner
    except ValueError:
        try:
            sent = requests.Request("POST", URL, headers={"Authorization": f"Bearer {TOKEN}"}).prepare()
            raise requests.ConnectionError(f"proxy said {TOKEN}", request=sent)
        except requests.ConnectionError as exc:
            error = exc
    mock.post(URL, body=error)
    with pytest.raises(RemoteError) as caught:
        call(fake, "POST", json={})
    texts = []
    link: BaseException | None = caught.value
    while link is not None:
        texts += [str(link), repr(link)]
        link = link.__cause__ or link.__context__
    assert len(texts) == 6
    assert not [text for text in texts if TOKEN in text]
    assert caught.value.__cause__.request is None


# -- real loopback servers for the limits ---------------------------------------------------------------


class RawServer:
    """A loopback server that runs ``respond(conn)`` for each connection it accepts, in a thread each.

    ``respond`` usually starts with :meth:`receive`; ``requests`` holds every request head received and
    ``ended`` is set whenever a ``respond`` returns or fails (the client went away).
    """

    def __init__(self, respond) -> None:
        self.respond = respond
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.stopping = threading.Event()
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, path: str = "/v1/items", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def receive(self, conn: socket.socket) -> bytes:
        """Read one request (head and a Content-Length body) and record its head."""
        data = b""
        while b"\r\n\r\n" not in data:
            more = conn.recv(65536)
            if not more:
                return b""
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            body += conn.recv(65536)
        self.requests.append(head)
        return head

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            with conn:
                self.respond(conn)
        except OSError:
            pass
        finally:
            self.ended.set()

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def serve():
    """``serve(respond)`` starts a :class:`RawServer`; every one started is closed after the test."""
    servers: list[RawServer] = []

    def start(respond) -> RawServer:
        servers.append(RawServer(respond))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def real_context(seconds_left: float = 30.0, *, max_body: int | None = None, token: str | None = TOKEN,
                 ) -> CallContext:
    account = Account("demo", "default", BASE, Secret(token) if token else None)
    return CallContext(account=account, deadline=time.monotonic() + seconds_left, max_body=max_body)


def real_send(url: str, ctx: CallContext, method: str = "GET", *, session: requests.Session | None = None,
              **options):
    """``send`` on the real clock, as an integration calls it."""
    return send(session or new_session(), method, url, ctx=ctx, json={} if method == "POST" else None,
                **options)


def head(status: str = "200 OK", **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}"] + [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def too_large(host: str, cap: int) -> str:
    return (f"the answer from {host} is larger than the run's memory allows (more than {cap} bytes); "
            "the run's memory limit can be raised")


# -- bounded bodies ---------------------------------------------------------------------------------------


CAP = 1 << 20


def test_a_body_up_to_the_cap_is_read_whole(fake, mock):
    mock.get(URL, body=b"x" * 1000)
    ctx = context(fake)
    ctx.max_body = 1000
    response = call(fake, ctx=ctx)
    assert response.content == b"x" * 1000 and response.text == "x" * 1000


def test_without_a_cap_any_body_is_read(fake, mock):
    mock.get(URL, body=b"y" * (3 * CAP))
    assert len(call(fake).content) == 3 * CAP


def test_a_body_one_byte_over_the_cap_ends_the_run_and_is_not_retried(fake, mock):
    mock.get(URL, body=b"x" * 1001)
    ctx = context(fake)
    ctx.max_body = 1000
    with pytest.raises(LimitExceeded) as caught:
        call(fake, ctx=ctx)
    assert (caught.value.kind, caught.value.message) == ("memory", too_large("api.example.test", 1000))
    assert len(mock.calls) == 1 and ctx.http_status == 200


def test_the_bytes_received_are_capped_as_well_as_the_decompressed_ones(fake, mock):
    # Random bytes do not compress: the gzip body is a little larger than what it inflates to.
    data = random.Random(7).randbytes(100_000)
    mock.get(URL, body=gzip.compress(data), headers={"Content-Encoding": "gzip"})
    ctx = context(fake)
    ctx.max_body = len(data)
    with pytest.raises(LimitExceeded) as caught:
        call(fake, ctx=ctx)
    assert caught.value.message == too_large("api.example.test", len(data))
    mock.get(URL, body=gzip.compress(data), headers={"Content-Encoding": "gzip"})
    ctx.max_body = len(gzip.compress(data))
    assert call(fake, ctx=ctx).content == data


def test_a_content_length_over_the_cap_is_refused_before_the_body_is_read(serve):
    def respond(conn):  # announces a terabyte, then sends nothing and keeps the connection open
        server.receive(conn)
        conn.sendall(head(Content_Length=str(10 ** 12)))
        server.stopping.wait(10)

    server = serve(respond)
    started = time.monotonic()
    with pytest.raises(LimitExceeded) as caught:
        real_send(server.url(), real_context(max_body=CAP), read_timeout=5)
    assert caught.value.message == too_large(f"127.0.0.1:{server.port}", CAP)
    assert time.monotonic() - started < 2.5  # not the 5 s a read of the missing body would wait


def _gzip_bomb(inflated: int) -> bytes:
    """A gzip body that inflates to ``inflated`` zero bytes: one 1 MiB member, repeated."""
    return gzip.compress(bytes(1 << 20), 9) * (inflated >> 20)


def test_a_gzip_bomb_stops_at_the_cap_without_inflating_past_it(serve):
    bomb = _gzip_bomb(400 << 20)
    assert len(bomb) < 500_000  # about 400 KB on the wire for 400 MiB inflated

    def respond(conn):
        server.receive(conn)
        conn.sendall(head(Content_Encoding="gzip", Content_Length=str(len(bomb))) + bomb)

    server = serve(respond)
    tracemalloc.start()
    try:
        with pytest.raises(LimitExceeded) as caught:
            real_send(server.url(), real_context(max_body=CAP))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.message == too_large(f"127.0.0.1:{server.port}", CAP)
    assert peak < CAP + (2 << 20), f"peak {peak} bytes for a cap of {CAP}"


@pytest.mark.parametrize("framing", ["chunked", "close-delimited"])
def test_an_endless_body_stops_at_the_cap_and_its_connection_is_closed(serve, framing):
    piece = b"[" * 65536

    def respond(conn):
        server.receive(conn)
        if framing == "chunked":
            conn.sendall(head(Transfer_Encoding="chunked"))
            while not server.stopping.is_set():
                conn.sendall(b"10000\r\n" + piece + b"\r\n")
        else:
            conn.sendall(head(Connection="close"))
            while not server.stopping.is_set():
                conn.sendall(piece)

    server = serve(respond)
    with pytest.raises(LimitExceeded) as caught:
        real_send(server.url(), real_context(max_body=CAP))
    assert caught.value.message == too_large(f"127.0.0.1:{server.port}", CAP)
    assert server.ended.wait(5)  # the server's writes failed: the client closed the connection


class CountingServer(ThreadingHTTPServer):
    """An HTTP/1.1 keep-alive server that counts the connections it accepts."""

    daemon_threads = True

    def __init__(self, handler) -> None:
        self.connections = 0
        self.cookies: list[str | None] = []
        super().__init__(("127.0.0.1", 0), handler)

    def get_request(self):
        self.connections += 1
        return super().get_request()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class Paths(BaseHTTPRequestHandler):
    """``/ok`` answers ``{}`` with a cookie; ``/endless`` sends chunks forever; ``/slow`` trickles its body."""

    protocol_version = "HTTP/1.1"
    server: CountingServer

    def do_GET(self) -> None:
        self.server.cookies.append(self.headers.get("Cookie"))
        self.send_response(200)
        if self.path == "/endless":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while True:
                self.wfile.write(b"10000\r\n" + b" " * 65536 + b"\r\n")
        body = b"{}" * (50 if self.path == "/slow" else 1)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "session=abc123; Path=/; Max-Age=3600")
        self.end_headers()
        for index in range(len(body)):
            if self.path == "/slow":
                time.sleep(0.3)
            self.wfile.write(body[index:index + 1])

    def log_message(self, format, *args) -> None:
        pass


@pytest.fixture
def paths():
    server = CountingServer(Paths)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_an_aborted_answer_never_returns_its_connection_to_the_pool(paths):
    session = new_session()
    with pytest.raises(LimitExceeded):
        real_send(paths.url("/endless"), real_context(max_body=CAP), session=session)
    assert real_send(paths.url("/ok"), real_context(max_body=CAP), session=session).content == b"{}"
    assert real_send(paths.url("/ok"), real_context(max_body=CAP), session=session).content == b"{}"
    assert paths.connections == 2  # a fresh one after the abort, then kept alive


# -- the deadline -------------------------------------------------------------------------------------------


def trickling(server_ref: list, *, part: str, delay: float = 0.3):
    """A respond() that sends a 200 answer one byte every ``delay`` seconds, in its head or its body
    (``"body until close"``: a body without a length, which ends when the connection closes)."""
    body = b'{"items": []}' * 20

    def respond(conn):
        server = server_ref[0]
        server.receive(conn)
        if part == "body until close":
            answer = head(Connection="close")
            part_sent = "body"
        else:
            answer, part_sent = head(Content_Length=str(len(body))), part
        if part_sent == "body":
            conn.sendall(answer)
        slow = answer + body if part_sent == "headers" else body
        for index in range(len(slow)):
            if server.stopping.wait(delay):
                return
            conn.sendall(slow[index:index + 1])

    return respond


def waiting_for(port: int) -> str:
    return f"the run's time limit was reached while waiting for 127.0.0.1:{port}"


@pytest.mark.parametrize("part", ["headers", "body", "body until close"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_trickling_answer_is_cut_at_the_deadline_and_not_retried(serve, part, method):
    ref: list[RawServer] = []
    server = serve(trickling(ref, part=part))
    ref.append(server)
    ctx = real_context(0.8)
    started = time.monotonic()
    with pytest.raises(LimitExceeded) as caught:
        real_send(server.url(), ctx, method)
    elapsed = time.monotonic() - started
    expected = waiting_for(server.port) + (f"; {OUTCOME_UNKNOWN}" if method == "POST" else "")
    assert (caught.value.kind, caught.value.message) == ("timeout", expected)
    assert elapsed < 2.0, elapsed  # the deadline plus slack, though every single read is quick
    assert len(server.requests) == 1
    assert server.ended.wait(5)
    assert ctx.http_status == (None if part == "headers" else 200)


def test_a_kept_alive_connection_is_cut_too(paths):
    session = new_session()
    assert real_send(paths.url("/ok"), real_context(), session=session).status_code == 200
    with pytest.raises(LimitExceeded) as caught:
        real_send(paths.url("/slow"), real_context(0.8), session=session)
    assert caught.value.message == waiting_for(paths.server_address[1])
    assert paths.connections == 1


def test_a_trickling_tls_handshake_is_cut_at_the_deadline(serve):
    def respond(conn):  # the head of a 16 KiB handshake record, then its bytes one by one
        conn.recv(65536)
        conn.sendall(b"\x16\x03\x03\x40\x00")
        while not server.stopping.wait(0.3):
            conn.sendall(b"\x00")

    server = serve(respond)
    started = time.monotonic()
    with pytest.raises(LimitExceeded) as caught:
        real_send(server.url(scheme="https"), real_context(0.8))
    assert caught.value.message == waiting_for(server.port)
    assert time.monotonic() - started < 2.0


def test_a_silent_server_is_cut_at_the_deadline_by_the_read_timeout_or_the_watchdog(silent_server):
    port = silent_server.getsockname()[1]
    with pytest.raises(LimitExceeded) as caught:
        real_send(f"http://127.0.0.1:{port}/v1/items", real_context(0.5))
    assert caught.value.message == waiting_for(port)
    assert _accepted(silent_server) == 1


def test_one_watchdog_thread_serves_every_call(mock):
    mock.get(URL, json={})
    session = new_session()
    for _ in range(3):
        real_send(URL, real_context(), session=session)
    before = threading.active_count()
    for _ in range(50):
        real_send(URL, real_context(), session=session)
    assert threading.active_count() == before
    assert [thread.name for thread in threading.enumerate()].count("luabridge-http-deadlines") == 1


def test_released_watches_do_not_pile_up():
    watchdog = _Watchdog()
    for _ in range(1000):
        watchdog.release(watchdog.watch(60))
    assert len(watchdog._heap) <= 2 * watchdog._COMPACT_AT
    never = watchdog.watch(float("inf"))
    assert not never.queued
    watchdog.release(never)


def test_a_watch_that_passes_its_deadline_cuts_only_its_own_connection():
    watchdog = _Watchdog()
    ours, theirs = socket.socketpair(), socket.socketpair()

    class Connection(_CuttableConnection):
        pass

    cut, spared = Connection(), Connection()
    watchdog.connected(cut, ours[0])
    watchdog.connected(spared, theirs[0])
    late, running = watchdog.watch(0.05), watchdog.watch(60)
    watchdog.assign(cut, late)
    watchdog.assign(spared, running)
    ours[0].settimeout(5)
    assert ours[0].recv(1) == b""  # shut down by the watchdog: the blocked read ends at once
    assert late.expired and not running.expired
    theirs[1].sendall(b"x")
    assert theirs[0].recv(1) == b"x"
    for connection in (cut, spared):
        watchdog.closed(connection)
    for pair in (ours, theirs):
        for sock in pair:
            sock.close()


# -- cookies ------------------------------------------------------------------------------------------------


def test_a_cookie_a_server_sets_is_never_sent_back(paths):
    with requests.Session() as plain:  # the server's cookie is one a default session would return
        plain.get(paths.url("/ok"), timeout=5)
        plain.get(paths.url("/ok"), timeout=5)
    assert paths.cookies == [None, "session=abc123"]
    session = new_session()
    for _ in range(2):
        response = real_send(paths.url("/ok"), real_context(), session=session)
        assert response.headers["Set-Cookie"].startswith("session=abc123")
    assert paths.cookies[2:] == [None, None]
    assert len(session.cookies) == 0


# -- redaction ---------------------------------------------------------------------------------------------


HOSTILE_TOKENS = [
    "Sekr3t-7f3a\r\nX-Evil: 1",
    "Sekr3t-7f3a\rtail",
    "Sekr3t-7f3a\ttab",
    "Sekr3t-7f3a with space",
    "Sekr3t-7f3a-\u00e9\u2603\U0001f511",
    "Sekr3t-7f3a'quote\"both",
    "Sekr3t-7f3a/slash?&=%",
]
CORE = "sekr3t-7f3a"  # in every spelling of every hostile token, whatever the case


@pytest.mark.parametrize("token", HOSTILE_TOKENS)
def test_redact_removes_every_spelling(token):
    spellings = [
        token, token.lower(), token.upper(), quote(token, safe=""), quote(token), quote(token).lower(),
        quote_plus(token), repr(token)[1:-1], ascii(token)[1:-1], json.dumps(token)[1:-1],
        json.dumps(token, ensure_ascii=False)[1:-1], repr(token.encode())[2:-1],
        repr(repr(token))[1:-1], repr(f"Bearer {token}"), repr(f"x\"y' Bearer {token}"),
        repr(ValueError(f"Invalid header value {f'Bearer {token}'.encode(errors='replace')!r}")),
    ]
    for spelling in spellings:
        text = redact(f"<{spelling}>", token)
        assert CORE not in text.lower(), (spelling, text)
        assert text.startswith("<") and text.endswith(">") and "***" in text


@pytest.mark.parametrize(("text", "secrets", "expected"), [
    ("Bearer ABC.def and abc.DEF", ("abc.def",), "Bearer *** and ***"),
    ("a%2fb, a%2Fb, a/b", ("a/b",), "***, ***, ***"),
    ("'tok\\r\\n' and \"tok\\r\\n\"", ("tok\r\n",), "'***' and \"***\""),
])
def test_redact_spellings(text, secrets, expected):
    assert redact(text, *secrets) == expected


def all_texts(error: BaseException) -> list[str]:
    """str and repr of every exception reachable through causes and contexts, and the traceback."""
    texts, seen, pending = ["".join(traceback.format_exception(error))], set(), [error]
    while pending:
        link = pending.pop()
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        texts += [str(link), repr(link), repr(link.args)]
        pending += [link.__cause__, link.__context__]
    return texts


def echoing(server_ref: list):
    """A respond() that answers a status line made of the request's Authorization header."""
    def respond(conn):
        request = server_ref[0].receive(conn)
        auth = next((line for line in request.split(b"\r\n") if line.lower().startswith(b"authorization")), b"")
        conn.sendall(b"HTTP/1.1 " + auth + b"\r\n\r\n")

    return respond


@pytest.mark.parametrize("token", HOSTILE_TOKENS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_no_spelling_of_a_hostile_token_in_errors_or_logs(serve, caplog, token, method):
    caplog.set_level(logging.DEBUG)
    ref: list[RawServer] = []
    server = serve(echoing(ref))
    ref.append(server)
    with pytest.raises(RemoteError) as caught:
        real_send(server.url(), real_context(token=token), method, params={"echo": token}, max_attempts=2,
                  backoff=0.01)
    texts = all_texts(caught.value)
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    texts += [formatter.format(record) for record in caplog.records]
    assert [text for text in texts if CORE in text.lower()] == []
    assert caught.value.kind == "http" and str(caught.value) == caught.value.message
    if server.requests:  # sent: the server saw the token and echoed it in a broken status line
        assert any(record.name.startswith("urllib3") for record in caplog.records)


def test_unsendable_tokens_are_refused_before_anything_is_sent(serve):
    server = serve(lambda conn: server.receive(conn))
    for token in ("Sekr3t-7f3a\r\nX-Evil: 1", "Sekr3t-7f3a-\u2603"):
        with pytest.raises(RemoteError) as caught:
            real_send(server.url(), real_context(token=token), "POST")
        assert OUTCOME_UNKNOWN not in caught.value.message
        assert caught.value.message.startswith(f"the request to 127.0.0.1:{server.port} failed: ")
    assert server.requests == []


def test_a_token_in_a_host_name_is_redacted_lower_cased(fake, mock):
    from urllib3.exceptions import MaxRetryError

    token = "Sekr3t-7f3a"
    url = f"https://{token}.example.test/v1/items"
    reason = NameResolutionError(f"{token.lower()}.example.test", None, socket.gaierror(-2, "not known"))
    mock.get(url.lower(), body=requests.ConnectionError(MaxRetryError(None, url.lower(), reason)))
    ctx = context(fake, token=token)
    with pytest.raises(RemoteError) as caught:
        call(fake, url=url, ctx=ctx, max_attempts=1)
    assert caught.value.message == "could not connect to ***.example.test: host name not found"
    mock.get(url.lower(), body=b"x" * 11)
    ctx.max_body = 10
    with pytest.raises(LimitExceeded) as limit:
        call(fake, url=url, ctx=ctx)
    assert limit.value.message == too_large("***.example.test", 10)
    assert [text for error in (caught.value, limit.value) for text in all_texts(error)
            if CORE in text.lower()] == []


SENDABLE_TOKENS = [token for token in HOSTILE_TOKENS if token.isascii() and "\r" not in token and "\n" not in token]


@pytest.mark.parametrize("token", SENDABLE_TOKENS)
def test_urllib3_log_lines_written_during_a_call_are_redacted(serve, caplog, token):
    caplog.set_level(logging.DEBUG)
    server = serve(lambda conn: (server.receive(conn), conn.sendall(head(Content_Length="2") + b"{}")))
    assert real_send(server.url(), real_context(token=token), params={"echo": token}).content == b"{}"
    lines = [record.getMessage() for record in caplog.records if record.name.startswith("urllib3")]
    assert any('"GET /v1/items?echo=' in line for line in lines), lines  # the line that quoted the token
    assert [line for line in lines if CORE in line.lower()] == []


def test_connections_closed_by_their_answers_leave_no_descriptor_open(serve):
    closed_by_client = []

    def respond(conn):  # an answer that ends with its connection; then wait for the client's close
        server.receive(conn)
        conn.sendall(head(Connection="close") + b"{}")
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(2)
        closed_by_client.append(conn.recv(1) == b"")

    server = serve(respond)
    session = new_session()
    real_send(server.url(), real_context(), session=session)
    descriptors = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        assert real_send(server.url(), real_context(), session=session).content == b"{}"
    # A leak would leave one descriptor per call (20); the margin is for the server's own accepted socket
    # and threads elsewhere in the process that may hold one at the moment of counting.
    assert len(os.listdir("/proc/self/fd")) <= descriptors + 3
    deadline = time.monotonic() + 5
    while len(closed_by_client) < 21 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert closed_by_client == [True] * 21
