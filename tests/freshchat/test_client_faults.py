"""Every way a Freshchat call can fail, the exact message a script sees, and that no token ever leaks."""

from __future__ import annotations

import copy
import json
import logging
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import responses
from fake_time import FakeTime
from urllib3.exceptions import ProtocolError

from integrations.freshchat.client import FreshchatClient
from integrations.freshchat.simfaults import FaultPlan
from luabridge import Account, ArgumentError, Bridge, CallContext, CallError, LimitExceeded, RemoteError, Secret
from luabridge._http import OUTCOME_UNKNOWN

TOKEN = "fc-fault-token-SECRET-42"
WORK_TOKEN = "fc-work-token-SECRET-99"
BASE = "https://acme.freshchat.com/v2"
# Accounts as the environment configures them: the advice on 401 and 403 names their variables.
DEFAULT = Account("freshchat", "default", BASE, Secret(TOKEN), source="env", token_setting="FRESHCHAT_TOKEN")
WORK = Account("freshchat", "work", "https://work.freshchat.com/v2", Secret(WORK_TOKEN), source="env",
               token_setting="FRESHCHAT_WORK_TOKEN")
PAGE = {"page": 1, "per_page": 50}
WRONG_URL = f"the URL of account 'default' ({BASE}) is probably wrong"
CHECK_TOKEN = "check the token of account 'default' (FRESHCHAT_TOKEN)"

CALLS = {  # function -> (args, method, path)
    "list_conversations": (PAGE, "GET", "/conversations"),
    "get_conversation": ({"id": "c1"}, "GET", "/conversations/c1"),
    "create_conversation": ({"user_id": "u1", "initial_message": "hello"}, "POST", "/conversations"),
    "list_agents": (PAGE, "GET", "/agents"),
    "get_agent": ({"id": "agent-1"}, "GET", "/agents/agent-1"),
    "list_groups": (PAGE, "GET", "/groups"),
}


@dataclass(frozen=True)
class Fault:
    """One failing call: the answers the server gives (the last repeats) and what the script sees.

    The client raises ``message`` without its first part, ``freshchat.<function>: ``, which the bridge adds.
    """

    name: str
    function: str
    answers: tuple[dict[str, Any], ...]
    message: str
    sent: int = 1
    status: int | None = None
    account: Account = DEFAULT
    seconds_left: float = 60.0
    waits: tuple[float, ...] | None = None


def error(status: int, enum: str, message: str, **extra: Any) -> dict[str, Any]:
    """A Freshchat error answer."""
    return {"status": status, "json": {"code": status, "status": enum, "message": message}, **extra}


def text(status: int, body: str | bytes, content_type: str = "text/plain", **extra: Any) -> dict[str, Any]:
    return {"status": status, "body": body, "content_type": content_type, **extra}


FAULTS = [
    Fault("400", "list_agents", (error(400, "INVALID_VALUE", "items_per_page must be at most 100"),),
          "freshchat.list_agents: HTTP 400 INVALID_VALUE: items_per_page must be at most 100", status=400),
    Fault("401", "get_agent", (error(401, "UNAUTHORIZED", "Unauthorized access"),),
          f"freshchat.get_agent: HTTP 401 UNAUTHORIZED: Unauthorized access; {CHECK_TOKEN}", status=401),
    Fault("403-named-account", "list_groups", (error(403, "FORBIDDEN", "Auth failure"),),
          "freshchat.list_groups: HTTP 403 FORBIDDEN: Auth failure; check the token of account 'work' "
          "(FRESHCHAT_WORK_TOKEN)", status=403, account=WORK),
    Fault("404", "get_agent", (error(404, "AGENT_NOT_FOUND", "agent not found"),),
          "freshchat.get_agent: HTTP 404 AGENT_NOT_FOUND: agent not found", status=404),
    Fault("404-list-conversations", "list_conversations", (error(404, "NOT_FOUND", "Resource not found"),),
          "freshchat.list_conversations: HTTP 404 NOT_FOUND: Resource not found; this account may not offer "
          "GET /v2/conversations (Freshchat documents conversation lists only per user), or no conversation "
          "matches the filters", status=404),
    Fault("429-retries-used-up", "list_groups",
          (error(429, "TOO_MANY_REQUESTS", "Rate limit exceeded", headers={"Retry-After": "1"}),),
          "freshchat.list_groups: HTTP 429 TOO_MANY_REQUESTS: Rate limit exceeded; rate limited: the retries "
          "this run allows are used up, wait before calling again", sent=4, status=429,
          waits=(1.0, 1.0, 1.0)),
    Fault("429-retry-after-past-deadline", "list_agents",
          ({"status": 429, "headers": {"Retry-After": "120"}},),
          "freshchat.list_agents: rate limited (HTTP 429); the server asks to retry after 120 s but only "
          "3.2 s are left in this run", status=429, seconds_left=3.2, waits=()),
    Fault("500-read", "get_conversation",
          (error(500, "INTERNAL_SERVER_ERROR", "java.lang.NullPointerException"),),
          "freshchat.get_conversation: HTTP 500 INTERNAL_SERVER_ERROR: java.lang.NullPointerException",
          sent=4, status=500),
    Fault("500-write", "create_conversation", (error(500, "INTERNAL_SERVER_ERROR", "oops"),),
          "freshchat.create_conversation: HTTP 500 INTERNAL_SERVER_ERROR: oops", status=500),
    Fault("503-empty-body", "get_agent", ({"status": 503, "body": b""},),
          "freshchat.get_agent: HTTP 503 Service Unavailable", sent=4, status=503),
    Fault("html", "get_agent", (text(404, "<!DOCTYPE html><title>Not found</title>", "text/html"),),
          f"freshchat.get_agent: HTTP 404 with an HTML page, not JSON; {WRONG_URL}", status=404),
    Fault("html-auth-failure", "list_agents", (text(403, "<html>Auth failure</html>"),),
          f"freshchat.list_agents: HTTP 403 with an HTML page, not JSON; {WRONG_URL}; {CHECK_TOKEN}",
          status=403),
    Fault("garbage", "list_groups", (text(502, "upstream connect error or\n disconnect/reset"),),
          'freshchat.list_groups: HTTP 502 with the text "upstream connect error or disconnect/reset", not '
          f"JSON; {WRONG_URL}", sent=4, status=502),
    Fault("binary-garbage", "get_agent", (text(400, b"\xff\x00junk", "application/octet-stream"),),
          f'freshchat.get_agent: HTTP 400 with the text "\ufffd\\x00junk", not JSON; {WRONG_URL}',
          status=400),
    Fault("terminal-escape", "get_agent", (error(400, "INVALID_VALUE", "\x1b[2J\x1b]0;pwned\x07 bad"),),
          "freshchat.get_agent: HTTP 400 INVALID_VALUE: \\x1b[2J\\x1b]0;pwned\\x07 bad", status=400),
    Fault("other-json", "get_agent", ({"status": 400, "json": {"errors": ["bad id"]}},),
          'freshchat.get_agent: HTTP 400: {"errors": ["bad id"]}', status=400),
    Fault("json-array", "get_agent", ({"status": 400, "json": [1, 2]},),
          "freshchat.get_agent: HTTP 400: [1, 2]", status=400),
    Fault("error-key", "get_agent", ({"status": 400, "json": {"error": "invalid_request"}},),
          "freshchat.get_agent: HTTP 400: invalid_request", status=400),
    Fault("token-echoed", "get_agent", (error(401, "UNAUTHORIZED", f"token {TOKEN} is invalid"),),
          f"freshchat.get_agent: HTTP 401 UNAUTHORIZED: token *** is invalid; {CHECK_TOKEN}", status=401),
    Fault("long-message", "create_conversation", (error(400, "INVALID_VALUE", "x" * 1000),),
          "freshchat.create_conversation: HTTP 400 INVALID_VALUE: " + "x" * 297 + "...", status=400),
    Fault("redirect", "get_agent",
          ({"status": 301, "headers": {"Location": f"https://evil.example/collect?t={TOKEN}"}},),
          "freshchat.get_agent: HTTP 301: the request was redirected to evil.example; redirects are not "
          f"followed so the token is not sent elsewhere; check the URL of account 'default' ({BASE})",
          status=301),
    Fault("redirect-relative", "list_agents", ({"status": 307, "headers": {"Location": "/v2/agents/"}},),
          "freshchat.list_agents: HTTP 307: the request was redirected to another address on the same host; "
          f"redirects are not followed so the token is not sent elsewhere; check the URL of account "
          f"'default' ({BASE})", status=307),
    Fault("read-timeout", "get_agent", ({"body": requests.ReadTimeout("read timed out")},),
          "freshchat.get_agent: timed out after 30 s waiting for acme.freshchat.com "
          "(gave up after 4 attempts)", sent=4),
    Fault("write-read-timeout", "create_conversation", ({"body": requests.ReadTimeout("read timed out")},),
          "freshchat.create_conversation: timed out after 30 s waiting for acme.freshchat.com; "
          + OUTCOME_UNKNOWN),
    Fault("write-connection-reset", "create_conversation",
          ({"body": requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError()))},),
          "freshchat.create_conversation: the connection to acme.freshchat.com broke before a complete "
          f"answer arrived; {OUTCOME_UNKNOWN}"),
    Fault("exception-text-with-token", "list_agents",
          ({"body": requests.exceptions.SSLError(f"handshake failed for Bearer {TOKEN}")},),
          "freshchat.list_agents: could not make a secure connection to acme.freshchat.com: handshake failed "
          "for Bearer ***"),
]


def run(fault: Fault, fake: FakeTime) -> RemoteError:
    """Make the fault's call against its scripted answers; return the error it raised."""
    args, method, path = CALLS[fault.function]
    client = FreshchatClient(fault.account, sleep=fake.sleep, clock=fake.clock)
    ctx = CallContext(fault.account, deadline=fake.now + fault.seconds_left)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        for answer in fault.answers:
            mock.add(method, fault.account.url + path, **copy.deepcopy(answer))
        with pytest.raises(RemoteError) as caught:
            getattr(client, fault.function)(args, ctx)
        assert len(mock.calls) == fault.sent
        assert {call.request.url.split("?")[0] for call in mock.calls} == {fault.account.url + path}
    assert len(fake.slept) == fault.sent - 1
    if fault.waits is not None:
        assert tuple(fake.slept) == fault.waits
    return caught.value


def unnamed(function: str, message: str) -> str:
    """What the client raises: the message a script sees without the name the bridge puts in front."""
    prefix = f"freshchat.{function}: "
    assert message.startswith(prefix)
    return message[len(prefix):]


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
def test_fault(fault):
    raised = run(fault, FakeTime())
    assert raised.message == str(raised) == raised.cause == unnamed(fault.function, fault.message)
    assert (raised.function, raised.account) == (None, None)
    assert raised.status == fault.status
    assert raised.kind == "http"


CODES = {"400": "INVALID_VALUE", "401": "UNAUTHORIZED", "html": None, "other-json": None}


@pytest.mark.parametrize("name", CODES)
def test_the_service_error_code_is_a_field(name):
    fault = next(fault for fault in FAULTS if fault.name == name)
    assert run(fault, FakeTime()).code == CODES[name]


SENT_ONCE = [fault for fault in FAULTS if fault.sent == 1 and fault.seconds_left == 60]


@pytest.mark.parametrize("fault", SENT_ONCE, ids=[fault.name for fault in SENT_ONCE])
def test_the_bridge_names_the_function_once(fault):
    """Through the bridge a script sees the whole message, its call log too; faults sent once, so
    nothing waits for real between retries, in a run with the time the fault expects."""
    args, method, path = CALLS[fault.function]
    namespace = "app.integrations.freshchat" + ("" if fault.account is DEFAULT else f".{fault.account.alias}")
    code = f"local answer = {namespace}.{fault.function}(json.decode('{json.dumps(args)}'))\nreturn answer"
    accounts = {"freshchat": {"default": DEFAULT, "work": WORK}}
    with Bridge(accounts, integrations=["integrations.freshchat"], isolation=False) as bridge:
        with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
            for answer in fault.answers:
                mock.add(method, fault.account.url + path, **copy.deepcopy(answer))
            result = bridge.run(code, limits={"timeout": fault.seconds_left})
    assert (result.error.type, result.error.message) == ("http", f"script:1: {fault.message}")
    assert [(call.function, call.account, call.error) for call in result.calls] == [
        (f"freshchat.{fault.function}", fault.account.alias, fault.message)]


def closed_port() -> int:
    with socket.socket() as sock:  # bound then closed: nothing listens on this loopback port
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def refused(fake: FakeTime) -> tuple[RemoteError, int]:
    port = closed_port()
    account = Account("freshchat", "default", f"http://127.0.0.1:{port}/v2", Secret(TOKEN))
    client = FreshchatClient(account, sleep=fake.sleep, clock=fake.clock)
    with pytest.raises(RemoteError) as caught:
        client.create_conversation(CALLS["create_conversation"][0], CallContext(account, fake.now + 60))
    return caught.value, port


def test_a_refused_connection_is_retried_even_for_a_write():
    fake = FakeTime()
    raised, port = refused(fake)
    assert raised.message == f"could not connect to 127.0.0.1:{port}: connection refused (gave up after 4 attempts)"
    assert len(fake.slept) == 3


RECOVERIES = [
    # function, answers in order, the result, the waits (None: a random backoff, checked by count)
    ("list_agents", ({"status": 429, "headers": {"Retry-After": "1"}}, {"json": {"agents": []}}),
     {"agents": []}, [1.0]),
    ("create_conversation", ({"status": 429}, {"status": 201, "json": {"conversation_id": "c5"}}),
     {"conversation_id": "c5", "id": "c5"}, None),
    ("create_conversation", ({"body": requests.ConnectTimeout("connect timed out")},
                             {"status": 201, "json": {"conversation_id": "c6"}}),
     {"conversation_id": "c6", "id": "c6"}, None),
    ("get_conversation", ({"status": 503}, {"json": {"conversation_id": "c1"}}),
     {"conversation_id": "c1", "id": "c1", "messages": [{"id": "m1"}]}, None),
]
# The further requests a function makes once its first one succeeded: get_conversation reads the messages.
FOLLOW_UPS = {"get_conversation": ("/conversations/c1/messages", {"json": {"messages": [{"id": "m1"}]}})}


def recover(function: str, answers: tuple[dict[str, Any], ...], fake: FakeTime) -> Any:
    args, method, path = CALLS[function]
    client = FreshchatClient(DEFAULT, sleep=fake.sleep, clock=fake.clock)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        for answer in answers:
            mock.add(method, BASE + path, **copy.deepcopy(answer))
        if function in FOLLOW_UPS:
            follow_up, answer = FOLLOW_UPS[function]
            mock.get(BASE + follow_up, **answer)
        result = getattr(client, function)(args, CallContext(DEFAULT, fake.now + 60))
        assert len(mock.calls) == 2 + (function in FOLLOW_UPS)
    return result


@pytest.mark.parametrize(("function", "answers", "result", "waits"), RECOVERIES)
def test_a_retryable_failure_then_success(function, answers, result, waits):
    fake = FakeTime()
    assert recover(function, answers, fake) == result
    assert len(fake.slept) == 1 and 0 <= fake.slept[0] <= 0.25 if waits is None else fake.slept == waits


HOSTILE = [
    ("../agents", "must not contain '/': an id is a single path segment (got \"../agents\")"),
    ("a/b", "must not contain '/': an id is a single path segment (got \"a/b\")"),
    ("x?y", "must not contain '?': an id is a single path segment (got \"x?y\")"),
    ("#", "must not contain '#': an id is a single path segment (got \"#\")"),
    ("a\\b", "must not contain '\\': an id is a single path segment (got \"a\\\\b\")"),
    ("..", "must not be '.' or contain '..' (got \"..\")"),
    (".", "must not be '.' or contain '..' (got \".\")"),
    ("a..b", "must not be '.' or contain '..' (got \"a..b\")"),
    ("%2F", "must not contain percent-escapes such as %2F; pass the id itself (got \"%2F\")"),
    ("%2e%2E", "must not contain percent-escapes such as %2F; pass the id itself (got \"%2e%2E\")"),
    ("", "must not be empty"),
    ("\x00", "must not contain control characters (got \"\\u0000\")"),
    ("tab\there", "must not contain control characters (got \"tab\\there\")"),
    ("line\n", "must not contain control characters (got \"line\\n\")"),
    ("del\x7f", "must not contain control characters (got \"del\\u007f\")"),
    ("\x85next", "must not contain control characters (got \"\\u0085next\")"),
    ("a" * 257, "must be at most 256 characters long (got 257)"),
    ("y" * 60 + "?", "must not contain '?': an id is a single path segment (got \"" + "y" * 40 + "...\")"),
]


@pytest.mark.parametrize("function", ["get_agent", "get_conversation"])
@pytest.mark.parametrize(("value", "problem"), HOSTILE)
def test_a_hostile_id_is_refused_before_anything_is_sent(function, value, problem):
    client = FreshchatClient(DEFAULT)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        with pytest.raises(ArgumentError) as caught:
            getattr(client, function)({"id": value}, CallContext(DEFAULT, deadline=float("inf")))
        assert len(mock.calls) == 0
    assert caught.value.message == f"parameter 'id' {problem}"
    assert caught.value.kind == "validation"


def test_no_token_in_any_message_repr_traceback_or_log_across_the_fault_suite(caplog):
    caplog.set_level(logging.DEBUG)
    errors: list[CallError] = [run(fault, FakeTime()) for fault in FAULTS]
    errors.append(refused(FakeTime())[0])
    for function, answers, _, _ in RECOVERIES:
        recover(function, answers, FakeTime())
    for value, _ in HOSTILE:
        with pytest.raises(ArgumentError) as caught:
            FreshchatClient(DEFAULT).get_agent({"id": value}, CallContext(DEFAULT, deadline=float("inf")))
        errors.append(caught.value)
    texts = [part for raised in errors for part in (
        raised.message, str(raised), repr(raised), "".join(traceback.format_exception(raised)))]
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    texts += [formatter.format(record) for record in caplog.records]
    assert any(record.name == "luabridge.http" for record in caplog.records)  # retries were logged
    assert any(record.name.startswith("urllib3") for record in caplog.records)  # real sockets were used
    assert [text for text in texts if TOKEN in text or WORK_TOKEN in text] == []


LIMIT_FAULTS = [
    # fault spec, function, what the client raises ({host} is the simulator's)
    ("huge=200M", "get_agent", "memory",
     "the answer from {host} is larger than the run's memory allows (more than 1048576 bytes); the run's "
     "memory limit can be raised"),
    ("gzip_bomb=400M", "list_agents", "memory",
     "the answer from {host} is larger than the run's memory allows (more than 1048576 bytes); the run's "
     "memory limit can be raised"),
    ("endless", "list_conversations", "memory",
     "the answer from {host} is larger than the run's memory allows (more than 1048576 bytes); the run's "
     "memory limit can be raised"),
    ("trickle=0.3", "get_agent", "timeout", "the run's time limit was reached while waiting for {host}"),
    ("trickle=0.3:part=headers", "list_groups", "timeout",
     "the run's time limit was reached while waiting for {host}"),
    ("trickle=0.3", "create_conversation", "timeout",
     "the run's time limit was reached while waiting for {host}; " + OUTCOME_UNKNOWN),
]


SIMULATED_ARGS = {**{function: args for function, (args, _, _) in CALLS.items()},  # ids the simulator has
                  "get_agent": {"id": "agent-123"},
                  "create_conversation": {"user_id": "user-456", "initial_message": "hello"}}


def limited(simulator, spec: str, function: str) -> tuple[LimitExceeded, FreshchatClient, Account]:
    """Call ``function`` through a client of the simulator under a fault, with a 1 MiB cap and 0.8 s left."""
    account = Account("freshchat", "default", simulator.url, Secret(simulator.token))
    client = FreshchatClient(account)
    simulator.faults = FaultPlan.parse(f"{spec}:times=1")
    ctx = CallContext(account, deadline=time.monotonic() + 0.8, max_body=1 << 20)
    with pytest.raises(LimitExceeded) as caught:
        getattr(client, function)(SIMULATED_ARGS[function], ctx)
    return caught.value, client, account


@pytest.mark.parametrize(("spec", "function", "kind", "message"), LIMIT_FAULTS,
                         ids=[f"{spec}-{function}" for spec, function, _, _ in LIMIT_FAULTS])
def test_a_simulated_fault_that_hits_a_run_limit(simulator, spec, function, kind, message):
    started = time.monotonic()
    raised, client, account = limited(simulator, spec, function)
    host = simulator.url.split("/")[2]
    assert (raised.kind, raised.message) == (kind, message.format(host=host))
    assert time.monotonic() - started < 2.5
    assert simulator.count() == 1  # never retried, a read no more than a write
    if function == "create_conversation":
        assert len(simulator.created) == 1  # trickled: stored once, its answer lost
    # The aborted connection was closed, not pooled: the client's next call is served.
    ctx = CallContext(account, deadline=time.monotonic() + 5, max_body=1 << 20)
    assert client.get_agent({"id": "agent-123"}, ctx)["id"] == "agent-123"


def test_no_token_when_a_simulated_fault_hits_a_run_limit(simulator, caplog):
    caplog.set_level(logging.DEBUG)
    errors = [limited(simulator, spec, function)[0] for spec, function, _, _ in LIMIT_FAULTS]
    texts = [part for raised in errors for part in (
        raised.message, str(raised), repr(raised), "".join(traceback.format_exception(raised)))]
    texts += [logging.Formatter("%(name)s %(message)s").format(record) for record in caplog.records]
    assert any(record.name.startswith("urllib3") for record in caplog.records)
    assert [text for text in texts if simulator.token in text] == []
