"""What a script sees when something goes wrong: a caught bridge error is a table of facts that acts as its
message, an uncaught one reports the text it always did, and errors name the line and what to use instead.

Every test runs in this process and in a worker, where the facts cross the pipe from the host.
"""

from __future__ import annotations

import pytest

FAIL_MESSAGE = "script:2: echo.fail: HTTP 503 UNAVAILABLE: try later"


def test_a_caught_http_error_has_its_facts(either):
    result = either.run("""
        local ok, err = pcall(app.integrations.echo.work.fail)
        return {type(err), err.type, err.message, err["function"], err.account, err.status, err.code == nil}
    """)
    assert result.value == ["table", "http", FAIL_MESSAGE, "echo.fail", "work", 503, True]


@pytest.mark.parametrize(("expression", "expected"), [
    ("tostring(err)", FAIL_MESSAGE),
    ('err .. ""', FAIL_MESSAGE),
    ('"x" .. err', "x" + FAIL_MESSAGE),
    ("err .. 1", FAIL_MESSAGE + "1"),
    ('err:find("503")', [27, 29]),
    ('err:match("HTTP (%d+)")', "503"),
    ("err:lower()", FAIL_MESSAGE.lower()),
    ('err:gsub("^script:%d+: ", "")', ["echo.fail: HTTP 503 UNAVAILABLE: try later", 1]),
    ("#err", len(FAIL_MESSAGE)),
    ("err.no_such_field", None),
])
def test_code_written_for_string_errors_keeps_working(either, expression, expected):
    result = either.run(f"\nlocal ok, err = pcall(app.integrations.echo.fail)\nreturn {expression}")
    assert result.ok, result.error
    assert result.value == expected


def test_print_json_and_pairs_see_the_facts(either):
    result = either.run("""
        local ok, err = pcall(app.integrations.echo.fail)
        print(err)
        local keys = {}
        for k, v in pairs(err) do keys[#keys + 1] = k .. "=" .. tostring(v) end
        table.sort(keys)
        return {keys = keys, json = json.decode(json.encode(err))}
    """)
    assert result.output == FAIL_MESSAGE + "\n"
    facts = {"type": "http", "message": FAIL_MESSAGE, "function": "echo.fail", "account": "default", "status": 503}
    assert result.value == {"keys": sorted(f"{k}={v}" for k, v in facts.items()), "json": facts}


@pytest.mark.parametrize(("code", "kind", "function"), [
    ("app.integrations.echo.get_item({idd = 1})", "validation", "echo.get_item"),
    ("app.integrations.echo:echo()", "validation", "echo.echo"),
    ("app.integrations.echo.boom()", "runtime", None),
    ("app.integrations.echo.nope()", "lookup", None),
    ('lua_read_doc("no-such-page")', "lookup", None),
    ("lua_read_doc(1)", "runtime", None),
    ("app.integrations.echo.x = 1", "runtime", None),
    ('json.decode("[")', "runtime", None),
])
def test_every_bridge_error_is_a_value_with_its_type(either, code, kind, function):
    result = either.run(f"""
        local ok, err = pcall(function() {code} end)
        return {{type(err), err.type, err["function"], err.message == tostring(err), err:find("^script:2: ") ~= nil}}
    """)
    assert result.value == ["table", kind, function, True, True]


def test_a_permission_error_has_its_facts():
    from echo_integration import echo_accounts

    from luabridge import Bridge, Permissions

    with Bridge(echo_accounts(), integrations=["echo_integration"], isolation=False,
                permissions=Permissions(write="deny")) as bridge:
        result = bridge.run("local ok, err = pcall(app.integrations.echo.store, 'x') return {err.type, err.account}")
    assert result.value == ["permission", "default"]


@pytest.mark.parametrize(("code", "kind", "message"), [
    ("app.integrations.echo.fail()", "http", "script:1: echo.fail: HTTP 503 UNAVAILABLE: try later"),
    ("local ok, err = pcall(app.integrations.echo.fail)\nerror(err)", "http", "script:1: echo.fail: HTTP 503 "
     "UNAVAILABLE: try later"),
    ("local ok, err = pcall(app.integrations.echo.fail)\nerror(tostring(err), 0)", "http", "script:1: echo.fail: "
     "HTTP 503 UNAVAILABLE: try later"),
    ("return app.integrations.echo.fail()", "http", "script:1: echo.fail: HTTP 503 UNAVAILABLE: try later"),
    ('\n\nreturn lua_read_doc("nope")', "lookup", "script:3: lua_read_doc: Unknown doc page 'nope'."),
])
def test_an_uncaught_bridge_error_reports_its_message_and_type(either, code, kind, message):
    result = either.run(code)
    assert result.error.type == kind
    assert result.error.message.startswith(message), result.error.message


def test_a_rethrown_error_cannot_change_what_is_reported(either):
    result = either.run("""
        local ok, err = pcall(app.integrations.echo.fail)
        rawset(err, "message", "forged")
        error(err)
    """)
    assert result.error.type == "http"
    assert result.error.message == FAIL_MESSAGE


def test_an_uncaught_table_is_reported_as_json(either):
    result = either.run("error({code = 42, why = {'a', 'b'}})")
    assert result.error.type == "runtime"
    assert result.error.message == '{"code":42,"why":["a","b"]}'
    assert either.run("error(42)").error.message == "42"
    assert either.run("local t = {} t.t = t error(t)").error.message == '{"t": <cycle>}'


@pytest.mark.parametrize(("code", "message"), [
    ("local conv = {}\n\nfor _, m in ipairs(conv.messages) do end",
     "script:3: bad argument #1 to 'ipairs' (table expected, got nil)"),
    ("local conv = {}\nfor k in pairs(conv.participants) do end",
     "script:2: bad argument #1 to 'pairs' (table expected, got nil)"),
    ("local conv = {}\nreturn conv.messages[1].text", "script:2: attempt to index a nil value (field 'messages')"),
    ("local function f()\n  return app.integrations.echo.fail()\nend\nreturn f()",
     "script:4: echo.fail: HTTP 503 UNAVAILABLE: try later"),
])
def test_errors_name_the_line_and_the_field(either, code, message):
    assert either.run(code).error.message == message


@pytest.mark.parametrize(("code", "hint"), [
    ("local r = echo_get_item('x')",
     "(use app.integrations.echo.get_item(...): integrations are under app.integrations)"),
    ("local r = echo.echo()", "(use app.integrations.echo: integrations are under app.integrations)"),
    ('local json = require("json")', "json is already a global"),
    ('local home = os.getenv("HOME")',
     "(os.getenv is not available in the sandbox: os has clock, date, difftime and time only)"),
    ('local f = io.open("x")', "(io is not available in the sandbox: print() writes to the run's output"),
    ("nosuch_function()", "there is no global 'nosuch_function': integration functions are called as "
                          "app.integrations.<name>.<function>(...)"),
])
def test_missing_globals_get_a_hint_of_what_to_use(either, code, hint):
    result = either.run(code)
    assert result.error.message.startswith("script:1: attempt to "), result.error.message
    assert hint in result.error.message


def test_a_hint_is_only_for_the_uncaught_error(either):
    result = either.run('local ok, err = pcall(function() require("json") end) return err')
    assert result.value == "script:1: attempt to call a nil value (global 'require')"
