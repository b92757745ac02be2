"""The Lua surface of app.integrations.freshchat: names, accounts, call forms, validation, permissions, docs.

The client is swapped for a recorder through the integration's own ``connect`` seam, so these tests see
exactly which function and account each Lua call reached, with which arguments, and that nothing was sent
when a call is refused.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from integrations.freshchat import integration as freshchat
from luabridge import Account, Bridge, Permissions, Secret

REFERENCE = Path(__file__).parents[2] / "integrations" / "freshchat" / "reference.md"
F = "app.integrations.freshchat"
FUNCTIONS = [fn.name for fn in freshchat.functions]


class Recorder:
    """Stands in for FreshchatClient: records (function, account, args) and answers a small object."""

    def __init__(self, log: list, account: Account) -> None:
        self.log, self.account = log, account

    def __getattr__(self, name: str):
        if name not in FUNCTIONS:
            raise AttributeError(name)

        def method(args, ctx):
            self.log.append((name, self.account.alias, dict(args)))
            return {"function": name, "conversation_id": "c-1", "id": "c-1"}

        return method


def _accounts() -> dict:
    def account(alias: str, token: str | None) -> Account:
        return Account("freshchat", alias, f"https://{alias}.freshchat.com/v2", Secret(token) if token else None)

    return {"freshchat": {"default": account("default", "t-default"), "work": account("work", "t-work"),
                          "support": account("support", "t-support"), "nokey": account("nokey", None)}}


@pytest.fixture
def recorded():
    log: list = []
    integration = dataclasses.replace(freshchat, connect=lambda account: Recorder(log, account))
    with Bridge(_accounts(), integrations=[integration], isolation=False) as bridge:
        yield bridge, log


# The reference's call forms, and every function under both names and through each namespace.
REFERENCE_FORMS = [
    (f'{F}.list_conversations({{status = "open", per_page = 20}})',
     ("list_conversations", "default", {"status": "open", "per_page": 20, "page": 1})),
    (f'{F}.list_conversations({{status = "resolved", page = 1, per_page = 50}})',
     ("list_conversations", "default", {"status": "resolved", "page": 1, "per_page": 50})),
    (f'{F}.get_conversation({{id = "abc-123-def"}})', ("get_conversation", "default", {"id": "abc-123-def"})),
    (f'{F}.create_conversation({{user_id = "user-456", initial_message = "I need help", channel_id = "channel-789"}})',
     ("create_conversation", "default",
      {"user_id": "user-456", "initial_message": "I need help", "channel_id": "channel-789"})),
    (f"{F}.list_agents({{page = 1, per_page = 25}})", ("list_agents", "default", {"page": 1, "per_page": 25})),
    (f'{F}.get_agent({{id = "agent-123"}})', ("get_agent", "default", {"id": "agent-123"})),
    (f"{F}.list_groups({{page = 1, per_page = 50}})", ("list_groups", "default", {"page": 1, "per_page": 50})),
    (f"{F}.get_current_user({{}})", ("get_current_user", "default", {})),
    (f'{F}.freshchat_list_conversations({{page = 1, per_page = 1, status = "new", inbox_id = "example_inbox_id"}})',
     ("list_conversations", "default", {"page": 1, "per_page": 1, "status": "new", "inbox_id": "example_inbox_id"})),
    (f'{F}.default.get_agent("agent-123")', ("get_agent", "default", {"id": "agent-123"})),
    (f'{F}.work.get_agent("agent-123")', ("get_agent", "work", {"id": "agent-123"})),
    (f"{F}.support.list_groups()", ("list_groups", "support", {"page": 1, "per_page": 50})),
]


@pytest.mark.parametrize("code, expected", REFERENCE_FORMS, ids=[form[0][len(F) + 1:40] for form in REFERENCE_FORMS])
def test_reference_call_forms(recorded, code, expected):
    bridge, log = recorded
    result = bridge.run(code)
    assert result.ok, result.error
    assert log == [expected]


MINIMAL_ARGS = {
    "list_conversations": ("{}", {"page": 1, "per_page": 50}),
    "get_conversation": ('{id = "c-9"}', {"id": "c-9"}),
    "create_conversation": ('{user_id = "u-1", initial_message = "hi"}', {"user_id": "u-1", "initial_message": "hi"}),
    "list_agents": ("{}", {"page": 1, "per_page": 50}),
    "get_agent": ('{id = "a-9"}', {"id": "a-9"}),
    "list_groups": ("{}", {"page": 1, "per_page": 50}),
    "get_current_user": ("{}", {}),
}
NAMESPACES = [("", "default"), (".default", "default"), (".work", "work"), (".support", "support")]


@pytest.mark.parametrize("prefixed", [False, True], ids=["short", "prefixed"])
@pytest.mark.parametrize("namespace, alias", NAMESPACES, ids=[alias or "implicit" for alias, _ in NAMESPACES])
@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_under_every_name_and_account(recorded, function, namespace, alias, prefixed):
    bridge, log = recorded
    lua_args, expected_args = MINIMAL_ARGS[function]
    name = f"freshchat_{function}" if prefixed else function
    result = bridge.run(f"return {F}{namespace}.{name}({lua_args})")
    assert result.ok, result.error
    assert log == [(function, alias, expected_args)]
    assert [(call.function, call.account, call.ok) for call in result.calls] == [(f"freshchat.{function}", alias, True)]


@pytest.mark.parametrize("call", ["f()", "f({})", "f(nil)"])
def test_no_argument_equals_an_empty_table(recorded, call):
    bridge, log = recorded
    assert bridge.run(f"local f = {F}.list_groups return {call}").ok
    assert log == [("list_groups", "default", {"page": 1, "per_page": 50})]


def test_a_positional_scalar_is_the_first_required_parameter(recorded):
    bridge, log = recorded
    assert bridge.run(f'{F}.get_agent("agent-123") {F}.get_conversation("abc-123-def")').ok
    assert log == [
        ("get_agent", "default", {"id": "agent-123"}), ("get_conversation", "default", {"id": "abc-123-def"}),
    ]


def test_integral_floats_are_integers(recorded):
    bridge, log = recorded
    assert bridge.run(f"{F}.list_agents{{page = 2.0, per_page = 10}}").ok
    assert log == [("list_agents", "default", {"page": 2, "per_page": 10})]
    assert type(log[0][2]["page"]) is int


# What a script sees for each misuse: the exact message, with its line, and nothing sent.
MISUSES = [
    (f"{F}.get_agent({{id = 5}})", "validation",
     "freshchat.get_agent: parameter 'id' must be a string, got a number 5"),
    (f"{F}.get_agent({{id = print}})", "validation",
     "freshchat.get_agent: parameter 'id' must be a string, got a function"),
    (f"{F}.get_agent({{}})", "validation",
     "freshchat.get_agent: missing required parameter 'id' (a string: The agent ID)"),
    (f"{F}.list_conversations({{status = 'opne'}})", "validation",
     "freshchat.list_conversations: parameter 'status' must be one of \"new\", \"open\", \"pending\", \"resolved\", "
     "\"closed\"; got a string \"opne\". Did you mean \"open\"?"),
    (f"{F}.list_agents({{per_page = 500}})", "validation",
     "freshchat.list_agents: parameter 'per_page' must be at most 100, got 500"),
    (f"{F}.list_groups({{per_page = 101}})", "validation",
     "freshchat.list_groups: parameter 'per_page' must be at most 100, got 101"),
    (f"{F}.list_agents({{page = 0}})", "validation",
     "freshchat.list_agents: parameter 'page' must be at least 1, got 0"),
    (f"{F}.list_agents({{page = 1.5}})", "validation",
     "freshchat.list_agents: parameter 'page' must be a whole number (an integer), got 1.5"),
    (f"{F}.list_agents({{perpage = 5}})", "validation",
     "freshchat.list_agents: unknown parameter 'perpage'. Did you mean 'per_page'? Valid parameters: page, per_page"),
    (f"{F}.list_agents('x')", "validation",
     "freshchat.list_agents expects one table of named parameters, like freshchat.list_agents({page = 1}); "
     "got a string \"x\""),
    (f"{F}.list_agents({{1, 2}})", "validation",
     "freshchat.list_agents expects one table of named parameters, like freshchat.list_agents({page = 1}); "
     "got a table of positional values"),
    (f"{F}.get_agent('a', 'b')", "validation",
     "freshchat.get_agent expects one table of named parameters, like freshchat.get_agent({id = \"...\"}), "
     "or just its 'id'; got 2 arguments"),
    (f"{F}.create_conversation({{user_id = 1, initial_message = true}})", "validation",
     "freshchat.create_conversation: 2 problems with the arguments:\n"
     "- parameter 'user_id' must be a string, got a number 1\n"
     "- parameter 'initial_message' must be a string, got true"),
    (f"{F}:list_agents{{}}", "validation",
     "freshchat.list_agents: called with ':' — use a dot: app.integrations.freshchat.list_agents({...}), not a colon"),
    (f"local t = {{}} t.t = t {F}.get_agent(t)", "validation",
     "freshchat.get_agent: the argument cannot be sent: table contains a cycle (a table that contains itself)"),
    (f"{F}.list_convos()", "lookup",
     "Unknown function or account: app.integrations.freshchat.list_convos. Did you mean: list_conversations, "
     "list_groups, list_agents? Functions: list_conversations, get_conversation, create_conversation, list_agents, "
     "get_agent, list_groups, get_current_user. Accounts: default, nokey, support, work"),
    (f"{F}.suport.list_agents()", "lookup",
     "Unknown function or account: app.integrations.freshchat.suport. Did you mean: support? Functions: "
     "list_conversations, get_conversation, create_conversation, list_agents, get_agent, list_groups, "
     "get_current_user. Accounts: default, nokey, support, work"),
    (f"{F}.work.lst_agents()", "lookup",
     "Unknown function: app.integrations.freshchat.work.lst_agents. Did you mean: list_agents, get_agent, "
     "freshchat_list_agents? Functions: list_conversations, get_conversation, create_conversation, list_agents, "
     "get_agent, list_groups, get_current_user"),
    ("local x = app.integrations.freshcht", "lookup",
     "Unknown integration: app.integrations.freshcht. Did you mean: freshchat? Integrations: freshchat"),
    ("local x = app.integration", "lookup", "Unknown name: app.integration. app has: integrations"),
    (f"{F}.nokey.list_agents()", "config",
     "freshchat.list_agents: account 'nokey' of freshchat has no token; the host running this script did not "
     "give it one; nothing was sent"),
]


@pytest.mark.parametrize("code, kind, message", MISUSES, ids=[m[2][:50] for m in MISUSES])
def test_misuse_gets_a_message_to_fix_the_code_from_and_sends_nothing(recorded, code, kind, message):
    bridge, log = recorded
    uncaught = bridge.run(code)
    assert uncaught.error.type == kind
    assert uncaught.error.message == f"script:1: {message}"
    # Caught, the error is a value whose fields say what happened, and which reads as its message.
    caught = bridge.run(f"local ok, err = pcall(function()\n{code}\nend) return ok, tostring(err), err.type")
    assert caught.value == [False, f"script:2: {message}", kind]
    assert log == []


def test_error_messages_never_say_attempt_to_call_a_nil_value(recorded):
    bridge, _ = recorded
    for name in ("list_convos", "freshchat_get", "Default", "work.nothing"):
        assert "nil value" not in bridge.run(f"{F}.{name}()").error.message


def test_read_only_denies_the_write_and_sends_nothing(recorded):
    bridge, log = recorded
    code = f'return {F}.create_conversation{{user_id = "u", initial_message = "hi"}}'
    result = bridge.run(code, permissions=Permissions.read_only())
    assert result.error.type == "permission"
    assert result.error.message == (
        "script:1: freshchat.create_conversation: permission denied: the host does not allow write functions; "
        "nothing was sent"
    )
    assert log == []
    assert bridge.run(f"return {F}.list_agents()", permissions=Permissions.read_only()).ok
    assert [entry[0] for entry in log] == ["list_agents"]


def test_read_only_permission_error_is_catchable(recorded):
    bridge, _ = recorded
    code = f'local ok, e = pcall({F}.create_conversation, {{user_id = "u", initial_message = "x"}}) return ok'
    assert bridge.run(code, permissions=Permissions.read_only()).value is False


@pytest.mark.parametrize("answer", [True, False])
def test_ask_policy_asks_the_host_with_the_call(recorded, answer):
    bridge, log = recorded
    asked = []
    permissions = Permissions(write="ask", ask=lambda request: asked.append(request) or answer)
    code = f'{F}.work.create_conversation{{user_id = "u", initial_message = "hi"}}'
    result = bridge.run(code, permissions=permissions)
    assert [(r.function, r.account, r.operation, dict(r.args)) for r in asked] == [
        ("freshchat.create_conversation", "work", "write", {"user_id": "u", "initial_message": "hi"})
    ]
    assert result.ok is answer
    assert len(log) == (1 if answer else 0)


def test_call_log_has_one_entry_per_call_with_account_and_outcome(recorded):
    bridge, _ = recorded
    result = bridge.run(f"{F}.list_agents() {F}.work.get_agent('a') pcall({F}.get_agent, {{}}) {F}.nokey.list_groups()")
    entries = [(c.function, c.account, c.ok, c.http_status, c.error is None) for c in result.calls]
    assert entries == [
        ("freshchat.list_agents", "default", True, None, True),
        ("freshchat.get_agent", "work", True, None, True),
        ("freshchat.get_agent", "default", False, None, False),
        ("freshchat.list_groups", "nokey", False, None, False),
    ]
    assert result.to_json()["calls"][2]["error"] == "freshchat.get_agent: missing required parameter 'id' " \
                                                    "(a string: The agent ID)"


def test_tokens_never_show_in_results_or_reprs(recorded):
    bridge, _ = recorded
    result = bridge.run(f"{F}.nokey.list_agents()")
    text = repr(bridge) + repr(result) + repr(_accounts()) + str(result.to_json())
    assert not any(token in text for token in ("t-default", "t-work", "t-support"))


# Docs, in Lua and on the command line.

def test_lua_read_doc_serves_the_reference_byte_for_byte(recorded):
    bridge, _ = recorded
    result = bridge.run('return lua_read_doc("integrations.freshchat")')
    assert result.value == REFERENCE.read_text(encoding="utf-8")


@pytest.mark.parametrize("page", [
    "integrations.freshchat.list_agents", "integrations.freshchat.freshchat_list_agents",
    "app.integrations.freshchat.list_agents", "app.integrations.freshchat.freshchat_list_agents",
])
def test_function_pages_answer_to_every_spelling(recorded, page):
    bridge, _ = recorded
    text = bridge.run(f'return lua_read_doc("{page}")').value
    assert text == bridge.docs.read("integrations.freshchat.list_agents")
    assert "per_page" in text and "list_agents" in text


def test_account_namespace_pages(recorded):
    bridge, _ = recorded
    assert "work" in bridge.run('return lua_read_doc("integrations.freshchat.work")').value
    assert "default" in bridge.run('return lua_read_doc("integrations.freshchat.default")').value


def test_unknown_doc_page_is_a_lookup_error_listing_what_exists(recorded):
    bridge, _ = recorded
    result = bridge.run('local page = lua_read_doc("integrations.freshchat.list_convos")')
    assert result.error.type == "lookup"
    assert result.error.message.startswith(
        "script:1: lua_read_doc: Unknown doc page 'integrations.freshchat.list_convos'. "
        "Did you mean: integrations.freshchat.list_conversations?"
    )


def test_list_and_search_docs_from_lua(recorded):
    bridge, _ = recorded
    pages = bridge.run('return lua_list_docs("integrations.freshchat")').value
    assert "integrations.freshchat" in pages
    assert {f"integrations.freshchat.{name}" for name in FUNCTIONS} <= set(pages)
    hits = bridge.run('return lua_search_docs("current user")').value
    assert hits[0]["page"] == "integrations.freshchat.get_current_user"


def test_cli_docs_prints_the_reference_exactly():
    completed = subprocess.run(
        [sys.executable, "-m", "luabridge._cli", "docs", "integrations.freshchat"],
        capture_output=True, env={"PATH": "/usr/bin:/bin"}, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == REFERENCE.read_bytes()


def test_a_tail_called_function_still_reports_a_script_line(recorded):
    bridge, _ = recorded
    code = f"local x = 1\nlocal ok, err = pcall(function()\n  return {F}.get_agent({{}})\nend)\nreturn tostring(err)"
    assert bridge.run(code).value == (
        "script:2: freshchat.get_agent: missing required parameter 'id' (a string: The agent ID)"
    )
