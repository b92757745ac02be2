"""The client's fault suite again, end to end over real sockets: Lua script -> bridge -> client -> simulator.

``tests/freshchat/test_client_faults.py`` scripts every answer with ``responses``; here the same faults are
injected by the simulator (``FaultPlan`` rules) into real HTTP over loopback, scripts run in worker
processes as in production, and the simulator's own counts say what reached the server. Every run goes
through :func:`checked`, which searches its output, error, return value and call log for the tokens.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import urllib3.util.connection

from integrations.freshchat.simfaults import FaultPlan
from integrations.freshchat.simulator import Simulator
from luabridge import Account, Bridge, CallRecord, RunError, RunResult, Secret

ROOT = Path(__file__).resolve().parents[1]
WRONG_TOKEN = "stale-token-SECRET-0451"
OUTCOME_UNKNOWN = (
    "the request may have reached the server; the outcome is unknown and it was not retried "
    "(a retry could create a duplicate)"
)
CREATE = '{user_id = "user-456", initial_message = "I need help with my subscription", channel_id = "channel-789"}'
CALL_KEYS = {"function", "account", "ok", "duration_ms", "http_status", "error", "effect", "outcome"}


def accounts_for(sim: Simulator) -> dict[str, dict[str, Account]]:
    """``default`` and ``work`` with the simulator's token; ``stale`` with a token it refuses."""
    def account(alias: str, token: str) -> Account:
        # As the environment would configure it: advice on a refused token names the variable.
        return Account("freshchat", alias, sim.url, Secret(token), source="env",
                       token_setting=f"FRESHCHAT_{alias.upper()}_TOKEN")

    return {"freshchat": {
        "default": account("default", sim.token), "work": account("work", sim.token),
        "stale": account("stale", WRONG_TOKEN),
    }}


def secrets(sim: Simulator) -> list[str]:
    # The whole JWT, and its signature alone: a leak of part of a token is a leak too.
    return [sim.token, sim.token.rsplit(".", 1)[-1], WRONG_TOKEN]


def checked(result: RunResult, sim: Simulator) -> RunResult:
    """Check what every run must satisfy, whatever it did; return the result.

    No token in the output, the error, the value, the call log, the report or the repr; and every call log
    entry has the documented fields.
    """
    texts = [json.dumps(result.to_json(), ensure_ascii=False), result.report(), repr(result)]
    leaks = [secret for secret in secrets(sim) for text in texts if secret in text]
    assert leaks == [], "a token reached the host's view of a run"
    for call in result.to_json()["calls"]:
        assert set(call) == CALL_KEYS, call
        assert call["function"].startswith("freshchat.") and call["account"] in ("default", "work", "stale")
        assert call["ok"] in (True, False, None) and (call["http_status"] is None or 100 <= call["http_status"] < 600)
    return result


def pcall_script(call: str) -> str:
    """A script that makes ``app.integrations.freshchat.<call>`` under pcall and returns its error message,
    without the position in front (the kernel's business, tested elsewhere)."""
    return (f"local ok, err = pcall(app.integrations.freshchat.{call})\n"
            "assert(not ok, 'the call did not fail')\n"
            'return (err:gsub("^script:%d+: ", ""))')


@pytest.fixture(scope="module")
def bridge(simulator: Simulator) -> Iterator[Bridge]:
    """One bridge for the module, with worker processes (the production default), already warm."""
    with Bridge(accounts_for(simulator)) as bridge:
        bridge.prestart(1)
        yield bridge


@pytest.fixture
def sim(simulator: Simulator) -> Iterator[Simulator]:
    """The module's simulator with no faults and zeroed counters (created conversations stay)."""
    simulator.faults.clear()
    simulator.reset_counters()
    yield simulator
    simulator.faults.clear()


def run(bridge: Bridge, sim: Simulator, code: str, faults: str = "", **options: Any) -> RunResult:
    for rule in FaultPlan.parse(faults).rules:
        sim.faults.add(rule)
    return checked(bridge.run(code, **options), sim)


# -- a call fails: the exact message, and how many requests reached the server ----------------------------


@dataclass(frozen=True)
class Failure:
    name: str
    faults: str
    call: str  # what follows app.integrations.freshchat. inside pcall(...)
    message: str  # {url} is the simulator's base URL
    method: str
    path: str
    requests: int
    status: int | None


FAILURES = [
    Failure("401-wrong-token", "", 'stale.get_agent, "agent-123"',
            "freshchat.get_agent: HTTP 401 UNAUTHORIZED: invalid or missing bearer token in the Authorization "
            "header; check the token of account 'stale' (FRESHCHAT_STALE_TOKEN)", "GET", "/v2/agents", 1, 401),
    Failure("404-agent", "", 'get_agent, "no-such-agent"',
            "freshchat.get_agent: HTTP 404 AGENT_NOT_FOUND: agent not found", "GET", "/v2/agents", 1, 404),
    Failure("404-conversation", "", 'work.get_conversation, "no-such-conversation"',
            "freshchat.get_conversation: HTTP 404 CONVERSATION_NOT_FOUND: conversation not found",
            "GET", "/v2/conversations", 1, 404),
    Failure("404-unknown-user-on-create", "", 'create_conversation, {user_id = "nobody", initial_message = "hi"}',
            "freshchat.create_conversation: HTTP 404 USER_NOT_FOUND: user not found",
            "POST", "/v2/conversations", 1, 404),
    Failure("400-from-the-server", "", 'create_conversation, {user_id = "user-456", initial_message = "   "}',
            "freshchat.create_conversation: HTTP 400 INVALID_VALUE: messages[0].message_parts[0].text.content "
            "must be a non-empty string", "POST", "/v2/conversations", 1, 400),
    Failure("400-is-not-retried", "400:path=/v2/groups", "list_groups",
            "freshchat.list_groups: HTTP 400 BAD_REQUEST: bad request", "GET", "/v2/groups", 1, 400),
    Failure("429-retries-used-up", "429:path=/v2/agents:retry_after=0.05", 'get_agent, "agent-123"',
            "freshchat.get_agent: HTTP 429 TOO_MANY_REQUESTS: rate limit exceeded, retry later; rate limited: "
            "the retries this run allows are used up, wait before calling again", "GET", "/v2/agents", 4, 429),
    Failure("500-write-is-not-retried", "500:method=POST", f"create_conversation, {CREATE}",
            "freshchat.create_conversation: HTTP 500 INTERNAL_SERVER_ERROR: internal server error",
            "POST", "/v2/conversations", 1, 500),
    Failure("html-body", "malformed=html", 'get_agent, "agent-123"',
            "freshchat.get_agent: HTTP 200 with an HTML page, not JSON; the URL of account 'default' ({url}) "
            "is probably wrong", "GET", "/v2/agents", 1, 200),
    Failure("truncated-json-body", "malformed=json:path=/v2/conversations", "list_conversations",
            'freshchat.list_conversations: HTTP 200 with the text "{{"conversations": [{{"conversation_id": '
            '"7f1c2a90-3b", not JSON; the URL of account \'default\' ({url}) is probably wrong',
            "GET", "/v2/conversations", 1, 200),
    Failure("validation-sends-nothing", "", 'list_agents, {per_page = 500}',
            "freshchat.list_agents: parameter 'per_page' must be at most 100, got 500", "GET", "/", 0, None),
]


@pytest.mark.parametrize("failure", FAILURES, ids=[failure.name for failure in FAILURES])
def test_a_failing_call(bridge, sim, failure: Failure):
    created = len(sim.created)
    result = run(bridge, sim, pcall_script(failure.call), failure.faults)
    assert result.ok, result.report()
    assert result.value == failure.message.format(url=sim.url)
    assert sim.count(failure.method, failure.path) == failure.requests
    assert sim.count() == failure.requests  # nothing else was sent
    assert len(sim.created) == created  # no failed call stored a conversation
    [call] = result.calls
    assert (call.ok, call.http_status, call.error) == (False, failure.status, result.value)


def test_an_uncaught_http_error_fails_the_run_with_its_type_and_position(bridge, sim):
    result = run(bridge, sim, 'local agent = app.integrations.freshchat.get_agent("no-such-agent")')
    assert not result.ok
    assert (result.error.type, result.error.message) == (
        "http", "script:1: freshchat.get_agent: HTTP 404 AGENT_NOT_FOUND: agent not found")


# -- a call fails once, is retried, and succeeds ------------------------------------------------------------


@dataclass(frozen=True)
class Recovery:
    name: str
    faults: str
    value_of: str  # a Lua expression whose value the script returns; `fc` is app.integrations.freshchat
    value: Any
    method: str
    path: str


RECOVERIES = [
    Recovery("429-then-success", "429:times=1:retry_after=0.1", 'fc.get_agent("agent-123").id', "agent-123",
             "GET", "/v2/agents/agent-123"),
    Recovery("500-then-success", "500:times=1", 'fc.list_conversations({status = "resolved"}).pagination.total_items',
             95, "GET", "/v2/conversations"),
    Recovery("503-then-success", "503:times=1", "#fc.list_groups().groups", 5, "GET", "/v2/groups"),
    Recovery("dropped-connection-on-a-read", "drop:method=GET:times=1", "#fc.list_agents().agents", 36,
             "GET", "/v2/agents"),
]


@pytest.mark.parametrize("recovery", RECOVERIES, ids=[recovery.name for recovery in RECOVERIES])
def test_a_read_is_retried_after_a_transient_failure(bridge, sim, recovery: Recovery):
    result = run(bridge, sim, f"local fc = app.integrations.freshchat\nreturn {recovery.value_of}", recovery.faults)
    assert result.ok, result.report()
    assert result.value == recovery.value
    assert sim.count(recovery.method, recovery.path) == sim.count() == 2  # the failure and the retry
    [call] = result.calls
    assert (call.ok, call.http_status, call.error) == (True, 200, None)


def test_a_write_rate_limited_once_is_retried_and_creates_one_conversation(bridge, sim):
    created = len(sim.created)
    result = run(bridge, sim, f"return app.integrations.freshchat.create_conversation({CREATE}).conversation_id",
                 "429:method=POST:times=1:retry_after=0.1")
    assert result.ok, result.report()
    assert sim.count("POST", "/v2/conversations") == 2
    assert len(sim.created) == created + 1
    assert result.value == sim.created[-1]["conversation_id"]
    assert [(call.ok, call.http_status) for call in result.calls] == [(True, 201)]


def test_a_rate_limit_longer_than_the_time_limit_fails_fast(bridge, sim):
    started = time.monotonic()
    result = run(bridge, sim, "local page = app.integrations.freshchat.list_agents()",
                 "429:retry_after=120", limits={"timeout": 5})
    elapsed = time.monotonic() - started
    assert not result.ok and result.error.type == "http"
    found = re.fullmatch(
        r"script:1: freshchat\.list_agents: rate limited \(HTTP 429\); the server asks to retry after 120 s "
        r"but only (\d+\.\d) s are left in this run", result.error.message)
    assert found, result.error.message
    assert 3.0 < float(found[1]) <= 5.0
    assert elapsed < 2.0 and result.duration_ms < 2000  # it did not wait for the 5 s limit
    assert sim.count() == 1


# -- a write whose outcome is unknown is never sent twice -------------------------------------------------


def test_a_create_whose_answer_is_lost_is_not_sent_twice(bridge, sim):
    created = len(sim.created)
    result = run(bridge, sim, pcall_script(f"create_conversation, {CREATE}"),
                 "drop_after_store:method=POST:path=/v2/conversations:times=1")
    assert result.ok, result.report()
    host = sim.url.split("/")[2]
    assert result.value == (f"freshchat.create_conversation: the connection to {host} broke before a complete "
                            f"answer arrived; {OUTCOME_UNKNOWN}")
    # The server stored it: exactly one POST arrived and exactly one conversation exists for it.
    assert sim.count("POST", "/v2/conversations") == 1 and sim.count() == 1
    assert len(sim.created) == created + 1
    [call] = result.calls
    assert (call.ok, call.http_status, call.error) == (False, None, result.value)


def test_a_create_that_stalls_past_the_time_limit_is_not_sent_twice(bridge, sim):
    created = len(sim.created)
    result = run(bridge, sim, pcall_script(f"create_conversation, {CREATE}"),
                 "drop_after_store:method=POST:path=/v2/conversations:times=1:stall=4", limits={"timeout": 1.5})
    # The deadline cuts the request: the run ends as a timeout, and the call log says the write's outcome is
    # unknown (ok is null) rather than that it failed.
    [call] = result.calls
    assert call.ok is None and call.error.endswith(OUTCOME_UNKNOWN), call
    assert re.match(r"freshchat\.create_conversation: the run's time limit was reached while waiting for "
                    r"127\.0\.0\.1:\d+; ", call.error), call.error
    assert result.error.type == "timeout", result.report()
    assert sim.count("POST", "/v2/conversations") == 1 and sim.count() == 1
    assert len(sim.created) == created + 1


def closed_port() -> int:
    with socket.socket() as sock:  # bound, then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_create_refused_at_connect_time_is_retried_and_stored_once(sim, monkeypatch):
    # A refused connection proves the request was never sent, so even a write is retried. The simulator
    # cannot refuse a connection while it listens, so the first connection attempt is aimed at a closed
    # port: a real refusal from the kernel. That needs this process's urllib3, so this run is in-process.
    real_connect = urllib3.util.connection.create_connection
    refused: list[tuple[str, int]] = []

    def first_attempt_refused(address, *args, **kwargs):
        if not refused:
            address = ("127.0.0.1", closed_port())
            refused.append(address)
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", first_attempt_refused)
    created = len(sim.created)
    with Bridge(accounts_for(sim), isolation=False) as bridge:
        result = checked(bridge.run(
            f"return app.integrations.freshchat.create_conversation({CREATE}).conversation_id"), sim)
    assert result.ok, result.report()
    assert len(refused) == 1
    assert [(call.ok, call.http_status) for call in result.calls] == [(True, 201)]
    assert sim.count("POST", "/v2/conversations") == 1 and sim.count() == 1
    assert len(sim.created) == created + 1 and result.value == sim.created[-1]["conversation_id"]


# -- connections, the call log, the command line -------------------------------------------------------------


def test_fifty_calls_in_one_run_open_one_connection():
    # A simulator and a bridge of its own: a warm worker of the module's bridge may hold a connection already.
    with Simulator(seed=0) as own, Bridge(accounts_for(own)) as bridge:
        bridge.prestart(1)
        result = checked(bridge.run(
            'for i = 1, 50 do assert(app.integrations.freshchat.get_agent("agent-123").id == "agent-123") end'
        ), own)
        assert result.ok, result.report()
        assert len(result.calls) == 50 and own.count("GET", "/v2/agents/agent-123") == 50
        assert own.connections_opened == 1


def test_the_call_log_records_each_call(bridge, sim):
    code = "\n".join([
        'local a = app.integrations.freshchat.get_agent("agent-123")',
        "local g = app.integrations.freshchat.work.list_groups()",
        'local ok = pcall(app.integrations.freshchat.stale.get_agent, "agent-123")',
        "local bad = pcall(app.integrations.freshchat.list_agents, {per_page = 0})",
        "return #g.groups",
    ])
    result = run(bridge, sim, code)
    assert result.ok, result.report()
    log = [{key: call[key] for key in ("function", "account", "ok", "http_status")}
           for call in result.to_json()["calls"]]
    assert log == [
        {"function": "freshchat.get_agent", "account": "default", "ok": True, "http_status": 200},
        {"function": "freshchat.list_groups", "account": "work", "ok": True, "http_status": 200},
        {"function": "freshchat.get_agent", "account": "stale", "ok": False, "http_status": 401},
        {"function": "freshchat.list_agents", "account": "default", "ok": False, "http_status": None},
    ]
    assert [call.error is None for call in result.calls] == [True, True, False, False]
    assert all(call.duration_ms > 0 for call in result.calls[:3])


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("luabridge")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "luabridge._cli"]
    return subprocess.run([*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_the_command_line_injects_faults_into_its_demo_simulator(simulator):
    retried = cli("run", "--demo", "--faults", "503:times=1", "--json", "-e",
                  'return app.integrations.freshchat.get_agent("agent-123").email')
    failed = cli("run", "--demo", "--faults", "malformed=html", "-e",
                 'local me = app.integrations.freshchat.get_current_user()')
    assert retried.returncode == 0, retried.stderr
    payload = json.loads(retried.stdout)
    assert payload["ok"] and payload["result"] == "alex.rivera@acme.example"
    assert failed.returncode == 1, failed.stderr
    assert re.search(r"^Error: script:1: freshchat\.get_current_user: HTTP 200 with an HTML page, not JSON; the URL "
                     r"of account 'default' \(http://127\.0\.0\.1:\d+/v2\) is probably wrong$", failed.stdout, re.M)
    # --demo serves the same seeded data, and so the same token, as Simulator(seed=0).
    for process in (retried, failed):
        assert [secret for secret in secrets(simulator) if secret in process.stdout + process.stderr] == []


def test_the_leak_check_sees_a_token_anywhere_in_a_run(simulator):
    # checked() guards every test above; make sure it would notice a token in each part of a result.
    token = simulator.token
    for leaky in (RunResult(output=f"Bearer {token}"), RunResult(value={"signature": token.rsplit(".", 1)[-1]}),
                  RunResult(error=RunError("http", WRONG_TOKEN)),
                  RunResult(calls=[CallRecord("freshchat.get_agent", "default", ok=False, error=token)])):
        with pytest.raises(AssertionError, match="a token reached"):
            checked(leaky, simulator)
