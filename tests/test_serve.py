"""luabridge serve end to end: a real redis-server, two serve processes on loopback and one simulator.

The simulator runs in this process (real sockets) so that its own request count is the witness: the
account's budget held across nodes, a 429 on one node pausing the other, an idempotent retry sending
nothing twice. Other tests: SIGTERM during runs, a full queue, a bad API key, MCP over Streamable HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("redis")

from luabridge._demo import start_simulator  # noqa: E402
from luabridge._discovery import discover_integrations  # noqa: E402
from luabridge.simkit import FaultPlan  # noqa: E402

KEY = "test-api-key-1234"
BUDGET = 6
CALL = "return app.integrations.freshchat.list_agents({}).agents ~= nil"

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server (see .ci/run)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(5)


@pytest.fixture(scope="module")
def simulator():
    freshchat = next(item for item in discover_integrations() if item.name == "freshchat")
    sim = start_simulator(freshchat).start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def accounts(tmp_path_factory, simulator):
    path = tmp_path_factory.mktemp("accounts") / "accounts.toml"
    path.write_text(f'[freshchat.default]\nurl = "{simulator.url}"\ntoken = "{simulator.token}"\n'
                    f'rate_limit = "{BUDGET}/minute"\n\n'
                    f'[freshchat.free]\nurl = "{simulator.url}"\ntoken = "{simulator.token}"\n')
    return path


class Node:
    """One `luabridge serve` process."""

    def __init__(self, accounts: Path, redis_url: str | None, *options: str, key: str | None = KEY) -> None:
        env = {**os.environ, "LUABRIDGE_STATE": str(accounts.parent)}
        env.pop("LUABRIDGE_API_KEY", None)
        if key:
            env["LUABRIDGE_API_KEY"] = key
        command = [sys.executable, "-m", "luabridge._cli", "serve", "--port", "0", "--config", str(accounts), *options]
        if redis_url:
            command += ["--redis", redis_url]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.process.stdout.readline()
        assert line.startswith("Serving luabridge at "), line + self.process.stderr.read()
        self.url = line.split()[-1]
        self.key = key
        deadline = time.monotonic() + 20
        while self.get("/healthz")[0] != 200:
            assert time.monotonic() < deadline, "the node never became ready"
            time.sleep(0.05)

    def request(self, method: str, path: str, body=None, headers=None, key: str | None = "default"):
        sent = {"Content-Type": "application/json", **(headers or {})}
        key = self.key if key == "default" else key
        if key:
            sent["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, headers=sent, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), dict(exc.headers)

    def get(self, path: str, **options):
        return self.request("GET", path, **options)

    def run(self, code: str, headers=None, **fields):
        status, text, answer_headers = self.request("POST", "/v1/runs", {"code": code, **fields}, headers)
        assert status == 200, text
        return json.loads(text), answer_headers

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        finally:
            self.process.stdout.close()
            self.process.stderr.close()


@pytest.fixture(scope="module")
def nodes(accounts, redis_url):
    started = [Node(accounts, redis_url, "--timeout", "5"), Node(accounts, redis_url, "--timeout", "5")]
    yield started
    for node in started:
        assert node.stop() == 0


@pytest.fixture(autouse=True)
def clean(simulator, redis_url):
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    simulator.faults = FaultPlan()
    simulator.reset_counters()
    yield
    simulator.faults = FaultPlan()


def test_a_run_answers_the_result_object_with_its_ledger(nodes, simulator):
    result, _ = nodes[0].run(CALL)
    assert result["ok"] is True and result["result"] is True and result["error"] is None
    assert [(call["function"], call["account"], call["outcome"], call["http_status"]) for call in result["calls"]] \
        == [("freshchat.list_agents", "default", "succeeded", 200)]
    assert result["retryable"] is True and result["pending"] is None
    assert simulator.count("GET", "/v2/agents") == 1
    status, text, headers = nodes[1].get("/v1/docs/integrations.freshchat.list_agents")
    assert status == 200 and headers["content-type"].startswith("text/markdown") and "list_agents" in text
    assert nodes[1].get("/v1/docs/no.such.page")[0] == 404
    status, text, _ = nodes[0].request("POST", "/v1/runs", {"cod": "return 1"})
    assert status == 400 and "unknown field 'cod'" in text
    status, text, _ = nodes[0].request("POST", "/v1/runs", {"code": "return '\ud800'"})  # JSON "\\ud800"
    assert status == 400 and json.loads(text) == {
        "error": "the script is not valid Unicode: a lone surrogate at character 8"}
    failed, _ = nodes[0].run("error('boom')")
    assert failed["ok"] is False and failed["error"]["type"] == "runtime"


def test_the_account_budget_holds_across_nodes(nodes, simulator):
    script = "local ok = 0 for i = 1, 5 do if pcall(app.integrations.freshchat.list_agents, {}) then ok = ok + 1 " \
             "end end return ok"
    results = []
    threads = [threading.Thread(target=lambda node=node: results.append(node.run(script)[0])) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Ten calls asked for across two nodes; the service saw the budget and no more.
    assert simulator.count("GET", "/v2/agents") == BUDGET
    assert sum(result["result"] for result in results) == BUDGET
    errors = [call["error"] for result in results for call in result["calls"] if call["outcome"] != "succeeded"]
    assert len(errors) == 10 - BUDGET
    assert all(f"the request budget of account freshchat.default ({BUDGET}/minute) is spent" in error
               and "nothing was sent" in error for error in errors)
    # Another account has its own budget (none): it is not held back.
    free, _ = nodes[1].run("return app.integrations.freshchat.free.list_agents({}).agents ~= nil")
    assert free["ok"] is True
    metrics = nodes[0].get("/metrics")[1] + nodes[1].get("/metrics")[1]
    assert 'luabridge_calls_total{function="freshchat.list_agents",account="default",outcome="failed"}' in metrics


def test_a_429_on_one_node_pauses_the_account_on_the_other(nodes, simulator):
    simulator.faults = FaultPlan.parse("429:times=1:retry_after=1.5")
    first = threading.Thread(target=lambda: nodes[0].run("return app.integrations.freshchat.free.list_agents({})"))
    first.start()
    deadline = time.monotonic() + 10
    while simulator.count() < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    paused_at = time.monotonic()
    second, _ = nodes[1].run("return app.integrations.freshchat.free.list_agents({}).agents ~= nil")
    waited = time.monotonic() - paused_at
    first.join()
    assert second["ok"] is True
    assert waited >= 1.2, f"node 2 did not wait for the pause node 1 was told ({waited:.2f} s)"
    assert simulator.count("GET", "/v2/agents") == 3  # the 429, node 1's retry, node 2's call
    metrics = nodes[1].get("/metrics")[1]
    assert 'luabridge_rate_limit_waits_total{account="freshchat.free"} 1' in metrics


def test_an_idempotent_retry_on_any_node_runs_nothing_twice(nodes, simulator):
    script = "return app.integrations.freshchat.free.list_agents({}).agents[1].id"
    headers = {"Idempotency-Key": "retry-1"}
    first, first_headers = nodes[0].run(script, headers)
    again, again_headers = nodes[1].run(script, headers)
    assert again == first and again_headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in {name.lower() for name in first_headers}
    assert simulator.count("GET", "/v2/agents") == 1
    status, text, _ = nodes[1].request("POST", "/v1/runs", {"code": "return 2"}, headers)
    assert status == 422 and "another request" in text


def test_a_paused_write_is_approved_on_another_node(accounts, redis_url, simulator):
    script = ('return app.integrations.freshchat.free.create_conversation({user_id = "user-456", '
              'initial_message = "x"})')
    with_approvals = [Node(accounts, redis_url, "--approve-writes"), Node(accounts, redis_url, "--approve-writes")]
    try:
        paused, _ = with_approvals[0].run(script)
        assert paused["error"]["type"] == "approval" and simulator.count("POST") == 0
        approval_id = paused["pending"]["id"]
        status, text, _ = with_approvals[1].request("POST", f"/v1/approvals/{approval_id}", {"approve": True})
        assert status == 200, text
        assert simulator.count("POST") == 1
        status, text, _ = with_approvals[0].request("POST", f"/v1/approvals/{approval_id}", {"approve": True})
        assert status == 409 and simulator.count("POST") == 1
        assert with_approvals[0].request("POST", "/v1/approvals/apr_nope", {"approve": True})[0] == 404
    finally:
        for node in with_approvals:
            node.stop()


def test_sigterm_lets_the_runs_in_flight_finish(accounts, redis_url, simulator):
    node = Node(accounts, redis_url, "--workers", "2")
    simulator.faults = FaultPlan.parse("latency=1")
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(node.run(CALL.replace("default", "free"))))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while simulator.count() < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    node.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join()
    assert node.stop() == 0
    assert [result["ok"] for result, _ in answers] == [True, True]
    assert simulator.count("GET", "/v2/agents") == 2


def test_a_full_queue_answers_429_with_retry_after(accounts, simulator):
    node = Node(accounts, None, "--workers", "1", "--queue", "1")
    try:
        simulator.faults = FaultPlan.parse("latency=1")
        threads = [threading.Thread(target=node.run, args=(CALL.replace("default", "free"),)) for _ in range(2)]
        for thread in threads:
            thread.start()
            time.sleep(0.2)
        status, text, headers = node.request("POST", "/v1/runs", {"code": "return 1"})
        assert status == 429 and headers["retry-after"] == "1" and "queue of 1 is full" in text
        for thread in threads:
            thread.join()
        assert node.run("return 1")[0]["result"] == 1
        assert 'luabridge_requests_refused_total{reason="queue_full"} 1' in node.get("/metrics")[1]
    finally:
        node.stop()


def test_a_bad_api_key_is_refused(nodes, simulator):
    for key in (None, "wrong"):
        status, text, headers = nodes[0].request("POST", "/v1/runs", {"code": CALL}, key=key)
        assert status == 401 and headers["www-authenticate"] == "Bearer"
        assert nodes[0].get("/metrics", key=key)[0] == 401
    assert nodes[0].get("/healthz", key=None)[0] == 200
    assert simulator.count() == 0


def test_it_refuses_to_bind_beyond_loopback_without_a_key(accounts):
    env = {key: value for key, value in os.environ.items() if key != "LUABRIDGE_API_KEY"}
    done = subprocess.run([sys.executable, "-m", "luabridge._cli", "serve", "--host", "0.0.0.0", "--config",
                           str(accounts)], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 2 and "set $LUABRIDGE_API_KEY" in done.stderr


def test_mcp_over_streamable_http(nodes, simulator):
    import anyio
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def drive():
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http, \
                streamable_http_client(nodes[1].url + "/mcp", http_client=http) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            result = await session.call_tool("execute_lua", {"code": CALL.replace("default", "free")})
            return [tool.name for tool in tools.tools], result

    names, result = anyio.run(drive)
    assert names == ["execute_lua", "lua_read_doc", "lua_list_docs", "lua_search_docs"]
    assert result.is_error is False and "Return value: true" in result.content[0].text
    assert simulator.count("GET", "/v2/agents") == 1


def test_the_load_test_runs_briefly_without_errors():
    done = subprocess.run([sys.executable, "-m", "benchmarks.load", "--seconds", "2", "--rate", "10"],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["errors"] == 0 and report["runs"] >= 15 and report["p99_ms"] >= report["p50_ms"] > 0
    assert report["node_1_rss_mib"] > 0 and report["node_2_rss_mib"] > 0
