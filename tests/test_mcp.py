"""Tests of ``luabridge mcp``: a real server subprocess (``--demo``) driven by the SDK's stdio client.

One server is shared by the module; synchronous tests talk to it through an anyio blocking portal, whose
event loop thread owns the client session. The few failures a real server cannot be made to show (an
internal bug, the bridge refusing a run) are tested in-process on :class:`luabridge._mcp.LuaTools`.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import luabridge
from luabridge import Bridge, UsageError

pytest.importorskip("mcp", reason="needs the mcp extra: pip install 'luabridge[mcp]'")

import anyio  # noqa: E402  (anyio comes with mcp)
import mcp.types  # noqa: E402
from anyio.from_thread import start_blocking_portal  # noqa: E402
from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

from luabridge._cli import build_parser, open_bridge  # noqa: E402
from luabridge._mcp import LuaTools  # noqa: E402

REFERENCE = Path(__file__).resolve().parents[1] / "integrations" / "freshchat" / "reference.md"
SERVER = [sys.executable, "-m", "luabridge._cli", "mcp", "--demo"]
TOOLS = {"execute_lua", "lua_read_doc", "lua_list_docs", "lua_search_docs"}


class Connection:
    """A client session with one server subprocess, for synchronous tests."""

    def __init__(self, portal, session: ClientSession, info) -> None:
        self.portal, self.session, self.info = portal, session, info

    def call(self, tool: str, **arguments):
        """Call ``tool`` and return its result as ``(is_error, text)``."""
        result = self.portal.call(self.session.call_tool, tool, arguments)
        [content] = result.content
        return result.is_error, content.text

    def run(self, code: str, **limits):
        """Run ``code`` with ``execute_lua``; return ``(is_error, report)``."""
        return self.call("execute_lua", code=code, **limits)

    def tools(self) -> dict:
        """The tools the server lists, by name."""
        return {tool.name: tool for tool in self.portal.call(self.session.list_tools).tools}


@contextlib.asynccontextmanager
async def _session(options, elicitation=None):
    parameters = StdioServerParameters(command=SERVER[0], args=[*SERVER[1:], *options])
    async with stdio_client(parameters) as (read, write), \
            ClientSession(read, write, elicitation_callback=elicitation) as session:
        info = await session.initialize()
        yield session, info


@contextlib.contextmanager
def connect(*options: str, elicitation=None):
    """Start ``luabridge mcp --demo [options]`` and connect to it; the server stops on leaving.
    ``elicitation`` is the client's answer to the server's questions to the person (none: it cannot ask)."""
    with start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(_session(options, elicitation)) as (session, info):
        yield Connection(portal, session, info)


@pytest.fixture(scope="module")
def server():
    with connect() as connection:
        yield connection


@pytest.fixture(scope="module")
def docs():
    """The doc set the server serves (``--demo`` has a `work` account with its page), read in-process."""
    args = build_parser().parse_args(["mcp", "--demo", "--in-process"])
    with open_bridge(args) as bridge:
        yield bridge.docs


def report(*lines: str) -> re.Pattern:
    """A text report whose execution time may be any number of milliseconds."""
    return re.compile(re.escape("\n".join(lines)).replace(re.escape("<N>"), r"\d+"))


# Listing ----------------------------------------------------------------------------------------------------


def test_server_says_who_it_is(server):
    assert server.info.server_info.name == "luabridge"
    assert server.info.server_info.version == luabridge.__version__
    assert 'lua_read_doc("integrations.<name>")' in server.info.instructions


def test_lists_the_tools_with_descriptions_and_schemas(server):
    tools = server.tools()
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description
        assert tool.input_schema["type"] == "object"
        assert tool.input_schema["additionalProperties"] is False
    assert set(tools["execute_lua"].input_schema["properties"]) == {
        "code", "timeout", "memory_mb", "max_calls", "dry_run"}
    assert tools["execute_lua"].input_schema["required"] == ["code"]
    assert tools["lua_search_docs"].input_schema["required"] == ["query"]


def test_execute_lua_says_read_the_docs_first_and_what_exists(server):
    description = server.tools()["execute_lua"].description
    assert 'Read the docs before calling a function: lua_read_doc("integrations.<name>")' in description
    # --demo configures the default and the `work` accounts
    assert "- freshchat: Freshchat, 6 read and 1 write functions; accounts: default, work" in description
    assert "app.integrations.<name>.<function>({param = value, ...})" in description
    assert "json.encode, json.decode, print" in description
    assert "Limits per run: 30 s, 32 MiB of Lua memory, 100 integration calls, 64 KiB of output." in description
    assert "refuses" not in description


# execute_lua ------------------------------------------------------------------------------------------------


def test_runs_a_script_that_calls_freshchat(server):
    code = textwrap.dedent("""\
        local agent = app.integrations.freshchat.get_agent("agent-123")
        local same = app.integrations.freshchat.work.get_agent({id = "agent-123"})
        print(agent.first_name, same.last_name)
        return agent.email
    """)
    is_error, text = server.run(code)
    assert not is_error
    assert report(
        "Output:", "Alex\tRivera", 'Return value: "alex.rivera@acme.example"', "Execution time: <N>ms",
        "Integration calls: 2",
    ).fullmatch(text), text


@pytest.mark.parametrize(("code", "error"), [
    ('error("boom")', "Error: script:1: boom"),
    ("local x = nil\nreturn x.y", "Error: script:2: attempt to index a nil value (local 'x')"),
    ("return +", "Error: script:1: unexpected symbol near '+'"),
    ('return app.integrations.freshchat.get_agent("agent-nope")',
     "Error: script:1: freshchat.get_agent: HTTP 404 AGENT_NOT_FOUND: agent not found"),
])
def test_a_failing_script_is_an_error_result_with_its_report(server, code, error):
    is_error, text = server.run(code)
    assert is_error
    assert text.startswith(error + "\nExecution time: "), text


@pytest.mark.parametrize(("code", "limits", "error"), [
    ("while true do local s = ('x'):rep(64) end", {"timeout": 0.2}, "Error: time limit of 0.2 s exceeded"),
    # one C call that no instruction hook interrupts: the worker is killed at the deadline
    ('return ("a"):rep(1e5):find(".-.-b")', {"timeout": 1}, "Error: time limit of 1 s exceeded (the run was stopped)"),
    ('local t = {} for i = 1, 1e9 do t[i] = ("x"):rep(1024) .. i end', {"memory_mb": 8},
     "Error: memory limit of 8388608 bytes exceeded"),
    ("for i = 1, 3 do app.integrations.freshchat.list_groups() end", {"max_calls": 2},
     "Error: integration call limit of 2 exceeded"),
])
def test_a_hostile_script_gets_its_limit_error_and_the_server_carries_on(server, code, limits, error):
    is_error, text = server.run(code, **limits)
    assert is_error
    assert text.startswith(error + "\n"), text
    is_error, text = server.run("return 1")
    assert not is_error
    assert report("Return value: 1", "Execution time: <N>ms").fullmatch(text), text


@pytest.mark.parametrize(("arguments", "error"), [
    ({}, "Error: missing the required parameter 'code'"),
    ({"code": None}, "Error: missing the required parameter 'code'"),
    ({"code": "return 1", "timeout_s": 5}, "Error: unknown parameter 'timeout_s'; execute_lua takes: code, timeout, "
                                           "memory_mb, max_calls, dry_run"),
    ({"code": 42}, "Error: 'code' must be a string, got 42"),
    ({"code": "return 1", "timeout": "5"}, "Error: 'timeout' must be a number, got \"5\""),
    ({"code": "return 1", "timeout": True}, "Error: 'timeout' must be a number, got true"),
    ({"code": "return 1", "timeout": 0}, "Error: 'timeout' must be greater than 0, got 0"),
    ({"code": "return 1", "timeout": 900}, "Error: 'timeout' must be at most 600 on this host, got 900"),
    ({"code": "return 1", "memory_mb": 4096}, "Error: 'memory_mb' must be at most 1024 on this host, got 4096"),
    ({"code": "return 1", "max_calls": 2.5}, "Error: 'max_calls' must be an integer, got 2.5"),
    ({"code": "return 1", "max_calls": -1}, "Error: 'max_calls' must be greater than 0, got -1"),
    ({"code": "  \n"}, "Error: the script is empty"),
])
def test_invalid_arguments_are_an_error_result_that_says_why(server, arguments, error):
    assert server.call("execute_lua", **arguments) == (True, error)


def test_limits_within_the_ceilings_apply_to_one_run(server):
    is_error, text = server.run("return 1", timeout=5.5, memory_mb=16, max_calls=3)
    assert not is_error, text
    is_error, text = server.run("for i = 1, 4 do app.integrations.freshchat.list_groups() end", max_calls=3)
    assert text.startswith("Error: integration call limit of 3 exceeded\n"), text


def test_the_server_answers_while_runs_go_on(server):
    # a pattern match that only the kill at the deadline stops, so each run takes its whole time limit
    hostile = {"code": 'return ("a"):rep(1e5):find(".-.-b")', "timeout": 1}

    async def two_runs_and_a_doc_read(session: ClientSession):
        runs = []

        async def run() -> None:
            runs.append(await session.call_tool("execute_lua", hostile))

        started = time.monotonic()
        async with anyio.create_task_group() as group:
            group.start_soon(run)
            group.start_soon(run)
            await anyio.sleep(0.3)
            docs = await session.call_tool("lua_list_docs", {})
            answered = time.monotonic() - started
        return runs, docs, answered, time.monotonic() - started

    runs, docs, answered, elapsed = server.portal.call(two_runs_and_a_doc_read, server.session)
    assert not docs.is_error
    assert answered < 1.0  # before either run ends
    assert [result.content[0].text.splitlines()[0] for result in runs] == [
        "Error: time limit of 1 s exceeded (the run was stopped)"
    ] * 2
    assert elapsed < 2.7  # at once: one after the other takes over 3 s


def test_read_only_refuses_write_functions():
    with connect("--read-only") as server:
        tool = server.tools()["execute_lua"]
        assert "This host refuses write functions: calling one is a permission error." in tool.description
        assert tool.annotations.read_only_hint is True
        is_error, text = server.run(
            'return app.integrations.freshchat.create_conversation({user_id = "user-456", initial_message = "hi"})'
        )
        assert is_error
        assert report(
            "Error: script:1: freshchat.create_conversation: permission denied: the host does not allow write "
            "functions; nothing was sent",
            "Execution time: <N>ms",
            "Integration calls: 1",
            "  freshchat.create_conversation [default]: write, denied",
        ).fullmatch(text), text
        assert server.run('return app.integrations.freshchat.get_agent("agent-123").id')[0] is False


# The docs tools ---------------------------------------------------------------------------------------------


def test_read_doc_returns_the_reference(server):
    assert server.call("lua_read_doc", page="integrations.freshchat") == (
        False, REFERENCE.read_text(encoding="utf-8")
    )


def test_read_doc_without_a_page_returns_the_index(server, docs):
    assert server.call("lua_read_doc") == (False, docs.index())
    assert server.call("lua_read_doc", page=None) == (False, docs.index())


@pytest.mark.parametrize("page", ["integrations.freshchat.list_agent", "no-such-page"])
def test_an_unknown_page_is_an_error_result_listing_pages(server, docs, page):
    with pytest.raises(luabridge.LookupFailure) as failure:
        docs.read(page)
    is_error, text = server.call("lua_read_doc", page=page)
    assert (is_error, text) == (True, f"Error: {failure.value}")
    assert text.startswith(f"Error: Unknown doc page '{page}'.")
    assert "lua_list_docs()" in text


def test_list_docs_returns_the_names_as_json(server, docs):
    assert json.loads(server.call("lua_list_docs")[1]) == docs.list()
    is_error, text = server.call("lua_list_docs", prefix="integrations.freshchat.get")
    assert not is_error
    assert json.loads(text) == [
        "integrations.freshchat.get_agent", "integrations.freshchat.get_conversation",
        "integrations.freshchat.get_current_user",
    ]
    assert server.call("lua_list_docs", prefix="nothing-starts-like-this") == (False, "[]")


def test_search_docs_returns_the_hits_as_json(server, docs):
    is_error, text = server.call("lua_search_docs", query="agent email")
    assert not is_error
    hits = json.loads(text)
    assert hits == docs.search("agent email")
    assert hits[0]["page"] in ("integrations.freshchat.get_agent", "integrations.freshchat.list_agents")
    assert set(hits[0]) == {"page", "title", "snippet"}


@pytest.mark.parametrize(("tool", "arguments", "error"), [
    ("lua_search_docs", {"query": "   "}, 'Error: the query is empty; give words to search for, like "agent email"'),
    ("lua_search_docs", {}, "Error: missing the required parameter 'query'"),
    ("lua_read_doc", {"page": 3}, "Error: 'page' must be a string, got 3"),
    ("lua_list_docs", {"prefix": ["a"]}, "Error: 'prefix' must be a string, got [\"a\"]"),
    ("lua_list_docs", {"path": "a"}, "Error: unknown parameter 'path'; lua_list_docs takes: prefix"),
    ("run_lua", {"code": "return 1"},
     "Error: unknown tool 'run_lua'; tools: execute_lua, lua_read_doc, lua_list_docs, lua_search_docs"),
])
def test_invalid_docs_calls_are_error_results(server, tool, arguments, error):
    assert server.call(tool, **arguments) == (True, error)


# The process ------------------------------------------------------------------------------------------------


class RawServer:
    """A server subprocess spoken to in JSON-RPC lines, to see exactly what crosses its stdout."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def handshake(self) -> None:
        """Initialize the session the way MCP clients of the 2025-06-18 protocol do."""
        self.send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}})
        assert self.receive()["result"]["serverInfo"]["name"] == "luabridge"
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, message: dict) -> None:
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def receive(self) -> dict:
        ready, _, _ = select.select([self.process.stdout], [], [], 20)
        assert ready, "no answer from the server in 20 s"
        return json.loads(self.process.stdout.readline())  # every line on stdout is a JSON-RPC message

    def finish(self) -> tuple[int, bytes, bytes]:
        """Close stdin; return the exit status and what remained on stdout and stderr."""
        self.process.stdin.close()
        status = self.process.wait(timeout=10)
        return status, self.process.stdout.read(), self.process.stderr.read()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.fixture
def raw_server():
    server = RawServer()
    try:
        server.handshake()
        yield server
    finally:
        server.kill()


def test_stdout_carries_only_the_protocol_and_stdin_eof_stops_the_server(raw_server):
    raw_server.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "execute_lua", "arguments": {"code": 'print("into the report") return 1'}}})
    answer = raw_server.receive()
    assert raw_server.finish() == (0, b"", b"")
    assert answer["id"] == 1
    assert answer["result"]["isError"] is False
    assert answer["result"]["content"][0]["text"].startswith("Output:\ninto the report\nReturn value: 1\n")


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_server_quietly(raw_server, signal_number):
    raw_server.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "execute_lua", "arguments": {"code": "while true do end", "timeout": 0.5}}})
    raw_server.process.send_signal(signal_number)
    # the server stops once the SDK's blocking read of stdin returns, here at the end of input
    assert raw_server.finish() == (0, b"", b"")


def test_mcp_without_the_sdk_prints_the_install_hint():
    blocker = textwrap.dedent("""\
        import sys

        class NoMcp:
            def find_spec(self, name, path=None, target=None):
                if name == "mcp" or name.startswith("mcp."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, NoMcp())
        from luabridge._cli import main
        sys.exit(main(["mcp"]))
    """)
    completed = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, timeout=30)
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr == (
        "luabridge: error: luabridge mcp needs the MCP SDK, version 2 (No module named 'mcp'); install it with: "
        "pip install -U 'luabridge[mcp]'\n"
    )


# Failures a real server cannot be made to show -------------------------------------------------------------


@pytest.fixture
def tools():
    with Bridge(isolation=False) as bridge:
        yield LuaTools(bridge)


def call(tools: LuaTools, name: str, **arguments):
    """Call a tool in-process; return ``(is_error, text)``."""
    result = anyio.run(tools.call, name, arguments)
    return result.is_error, result.content[0].text


def test_a_run_the_bridge_refuses_is_an_error_result(tools, monkeypatch):
    def refuse(code, *, limits):
        raise UsageError("the luabridge worker process failed to start (its error is on stderr above)")

    monkeypatch.setattr(tools.bridge, "run", refuse)
    assert call(tools, "execute_lua", code="return 1") == (
        True, "Error: the luabridge worker process failed to start (its error is on stderr above)"
    )


@pytest.mark.parametrize(("tool", "arguments", "broken"), [
    ("execute_lua", {"code": "return 1"}, "run"),
    ("lua_read_doc", {"page": "integrations"}, "docs"),
])
def test_a_bug_inside_a_tool_is_an_error_result_and_is_logged(tools, monkeypatch, caplog, tool, arguments, broken):
    def fail(*args, **kwargs):
        raise RuntimeError("something broke")

    if broken == "run":
        monkeypatch.setattr(tools.bridge, "run", fail)
    else:
        monkeypatch.setattr(tools.bridge.docs, "read", fail)
    assert call(tools, tool, **arguments) == (
        True, f"Error: {tool} failed inside luabridge (RuntimeError); this is a bug in the host, not in the call, "
              "and its log has the details"
    )
    [record] = caplog.records
    assert record.name == "luabridge"
    assert record.getMessage() == f"the {tool} tool failed"
    assert record.exc_info[1].args == ("something broke",)


# What the model reads is sized for it ----------------------------------------------------------------------

FLOOD_LINE = "conversation {} is waiting on the customer"
TRIM_MARKER = re.compile(r"\n\[\.\.\. ([\d,]+) characters(?: \(([\d,]+) lines?\))? left out; ([^\n]*) \.\.\.\]\n")


def test_execute_lua_trims_a_print_flood_to_head_and_tail_with_a_marker(server):
    lines = [FLOOD_LINE.format(i) for i in range(1, 1201)]  # 54 KB: within the output limit, not the budget
    is_error, text = server.run(f'for i = 1, 1200 do print(("{FLOOD_LINE}"):format(i)) end return #"done"'
                                .replace("{}", "%d"))
    assert not is_error and len(text) <= 20_000, len(text)
    [marker] = list(TRIM_MARKER.finditer(text))
    head = text[: marker.start()].removeprefix("Output:\n").splitlines()
    tail, rest = text[marker.end():].split("\nReturn value: 4\nExecution time: ")
    tail = tail.splitlines()
    assert head == lines[: len(head)] and tail == lines[-len(tail):]  # whole lines, never cut mid-word
    assert len(head) > 150 and len(tail) > 150
    left_out = lines[len(head): len(lines) - len(tail)]
    assert marker[1] == f"{sum(len(line) + 1 for line in left_out):,}"
    assert marker[2] == f"{len(left_out):,}"
    assert marker[3] == "print less: a count or a summary, not every record"
    assert re.fullmatch(r"\d+ms", rest)


def test_execute_lua_shows_the_head_of_a_huge_return_value_and_its_size(server):
    code = 'local t = {} for i = 1, 4000 do t[i] = "conversation-" .. i .. " waiting on customer" end return t'
    full = json.dumps([f"conversation-{i} waiting on customer" for i in range(1, 4001)])
    is_error, text = server.run(code)
    assert not is_error and len(text) <= 20_000, len(text)
    assert text.startswith('Return value: ["conversation-1 waiting on customer", ')
    [marker] = list(TRIM_MARKER.finditer(text))
    head = text[len("Return value: "): marker.start()]
    assert full.startswith(head) and head.endswith('customer", ')  # cut between two values
    assert len(head) > 19_000
    assert marker[1] == f"{len(full) - len(head):,}"
    assert marker[3] == (f"the return value is {len(full):,} characters of JSON; "
                         "return a summary instead: counts, ids, the few fields needed")
    assert re.fullmatch(r"Execution time: \d+ms", text[marker.end():])


def test_execute_lua_budget_is_set_by_the_environment(monkeypatch):
    code = 'for i = 1, 500 do print("line " .. i) end return 1'
    with Bridge(isolation=False) as bridge:
        tools = LuaTools(bridge)
        monkeypatch.setenv("LUABRIDGE_REPORT_CHARS", "1000")
        is_error, text = call(tools, "execute_lua", code=code)
        assert not is_error and len(text) <= 1_000 and TRIM_MARKER.search(text)
        monkeypatch.setenv("LUABRIDGE_REPORT_CHARS", "0")
        is_error, text = call(tools, "execute_lua", code=code)
        untimed = re.compile(r"Execution time: \d+ms")
        assert untimed.sub("", text) == untimed.sub("", bridge.run(code).report())  # everything
        assert text.count("\n") == 502 and not TRIM_MARKER.search(text)
        monkeypatch.setenv("LUABRIDGE_REPORT_CHARS", "12")
        monkeypatch.setattr(bridge, "run", lambda *args, **kwargs: pytest.fail("ran despite a bad setting"))
        is_error, text = call(tools, "execute_lua", code=code)
        assert is_error and text.startswith("Error: LUABRIDGE_REPORT_CHARS='12': give the characters of a report")


def test_execute_lua_says_that_the_instruction_limit_cannot_be_raised(server):
    description = server.tools()["execute_lua"].description
    assert ("A run also stops after 200,000,000 Lua instructions, which no parameter raises: a busy loop ends with "
            "an 'instructions' error before its time limit") in description


# Writes: dry runs, and approval by the person at the client -------------------------------------------------

WRITE = 'return app.integrations.freshchat.create_conversation({user_id = "user-456", initial_message = "hi"})'


def test_execute_lua_dry_run_returns_the_request_and_sends_nothing(server):
    is_error, text = server.run(WRITE, dry_run=True)
    assert not is_error, text
    assert '"dry_run": true' in text and '"method": "POST"' in text and '"path": "/conversations"' in text
    assert "  freshchat.create_conversation [default]: write, dry_run" in text.splitlines()
    assert server.run("return 1", dry_run="yes")[1] == "Error: 'dry_run' must be a boolean, got \"yes\""


def answering(action: str, approve: bool | None, asked: list):
    async def elicitation(context, params):
        asked.append(params)
        return mcp.types.ElicitResult(action=action, content=None if approve is None else {"approve": approve})

    return elicitation


@pytest.mark.parametrize(("action", "approve", "outcome"), [
    ("accept", True, "succeeded"), ("accept", False, "denied"), ("decline", None, "denied"),
])
def test_the_person_at_the_client_approves_or_declines_each_write(action, approve, outcome):
    asked: list = []
    with connect("--approve-writes", elicitation=answering(action, approve, asked)) as server:
        is_error, text = server.run(WRITE)
        read_error, _ = server.run('return app.integrations.freshchat.get_agent("agent-123").id')
    [question] = asked
    assert "freshchat.create_conversation (account default)" in question.message
    assert '"user_id": "user-456"' in question.message
    assert question.requested_schema["required"] == ["approve"]
    assert f"  freshchat.create_conversation [default]: write, {outcome}" in text.splitlines(), text
    assert is_error is (outcome == "denied")
    if outcome == "denied":
        assert "permission denied: declined by the host; nothing was sent" in text
    assert read_error is False and len(asked) == 1  # reads are not asked about


def test_a_client_that_cannot_ask_the_person_gets_writes_refused_saying_so():
    with connect("--approve-writes") as server:
        is_error, text = server.run(WRITE)
        tools = server.tools()
    assert is_error
    assert ("freshchat.create_conversation: permission denied: this write needs a person's approval and this MCP "
            "client cannot ask one (it does not support elicitation); nothing was sent") in text
    assert "approve" not in {name.split("_")[0] for name in tools}  # no tool lets the model approve its write
