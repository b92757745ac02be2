"""The generic HTTP policy: headers, timeouts, retries, waits, transport errors and token hygiene."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from email.utils import formatdate

import pytest
import requests
import responses
from fake_time import FakeTime
from responses import matchers
from urllib3.exceptions import NameResolutionError, ProtocolError

from luabridge._errors import LimitExceeded, RemoteError
from luabridge._http import OUTCOME_UNKNOWN, new_session, redact, send
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
    assert adapter._pool_maxsize == 8
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
