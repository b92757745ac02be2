"""The sandbox boundary attacked as data: every host entry point, times every hostile value, times every
way a script can catch what comes back, in a worker and in this process.

Each script collects the type of every value it receives (results and caught errors, walked into tables)
and returns the set; no ``userdata`` may ever be among them. Afterwards the same bridge must serve a clean
run, so an attack cannot leave anything behind in a worker.
"""

from __future__ import annotations

import pytest

# Lua expressions, each a hostile value.
HOSTILE = {
    "invalid_utf8": r'"\255\254"',
    "encoded_surrogate": r'"\237\160\128"',
    "nul": r'"a\0b"',
    "lone_surrogate_json": r'[["\ud800"]]',
    "surrogate_key_json": r'[[{"\udfff": "\udbff"}]]',
    "deep_json": '("["):rep(5000) .. ("]"):rep(5000)',
    "huge": '("x"):rep(2e6)',
    "number": "1e308",
    "boolean": "true",
    "empty_table": "{}",
    "function": "print",
    "thread": "coroutine.create(print)",
    "hostile_table": "setmetatable({}, {__index = function() error('no') end, "
                     "__tostring = function() error('no') end, __len = function() error('no') end})",
    "null": "json.null",
    "error_value": "select(2, pcall(app.integrations.echo.fail))",
    "error_value_internal": "select(2, pcall(app.integrations.echo.boom))",
}

# Lua snippets calling the host with `V` (the hostile value).
ENTRY_POINTS = {
    "json.decode": "json.decode(V)",
    "json.encode": "json.encode(V)",
    "lua_read_doc": "lua_read_doc(V)",
    "lua_read_doc_two": "lua_read_doc(V, V)",
    "lua_list_docs": "lua_list_docs(V)",
    "lua_search_docs": "lua_search_docs(V)",
    "app_index": "app[V]",
    "integrations_index": "app.integrations[V]",
    "integration_index": "app.integrations.echo[V]",
    "account_index": "app.integrations.echo.default[V]",
    "call_positional": "app.integrations.echo.echo(V)",
    "call_value": "app.integrations.echo.echo({text = V})",
    "call_key": "app.integrations.echo.echo({[V] = 1})",
    "call_two": "app.integrations.echo.echo(V, V)",
    "call_colon": "app.integrations.echo:echo(V)",
    "print": "print(V)",
    "tostring": "tostring(V)",
    "error": "error(V)",
}

# How the script catches it; `F` is a function running the entry point, `seen(...)` records values.
CATCHERS = {
    "pcall": "seen(pcall(F))",
    "xpcall": "seen(xpcall(F, function(e) seen(e) return e end))",
    "resume": "seen(coroutine.resume(coroutine.create(F)))",
    "wrap": "seen(pcall(coroutine.wrap(F)))",
    "close": "seen(pcall(function() local x <close> = setmetatable({}, {__close = function(_, e) seen(e) end}) "
             "F() end))",
    "load": "seen(pcall(load('local F = ... return F()'), F))",
}

COLLECT = """
local types = {}
local function walk(v, depth)
  local t = type(v)
  types[t] = true
  if t == "table" and depth < 4 and getmetatable(v) == nil then
    for k, x in next, v do walk(k, depth + 1) walk(x, depth + 1) end
  elseif t == "table" and depth < 4 and getmetatable(v) == false then  -- an error value: its facts
    for k, x in pairs(v) do walk(k, depth + 1) walk(x, depth + 1) end
    walk(v.message, depth + 1) walk(v.status, depth + 1) walk(v["function"], depth + 1)
  end
end
local function seen(...)
  for i = 1, select("#", ...) do walk((select(i, ...)), 0) end
end
"""


def _script(entry: str, catcher: str) -> str:
    cases = []
    for value in HOSTILE.values():
        call = ENTRY_POINTS[entry].replace("V", "(" + value + ")")
        cases.append(f"do local F = function() return {call} end {CATCHERS[catcher]} end")
    return COLLECT + "\n".join(cases) + "\nlocal out = {} for t in pairs(types) do out[#out + 1] = t end " \
        "table.sort(out) return out"


@pytest.fixture(params=["in_process", "worker"])
def attacked(request, bridge, isolated_bridge):
    chosen = bridge if request.param == "in_process" else isolated_bridge
    yield chosen
    clean = chosen.run("return {type(python), app.integrations.echo.echo({text = 'clean'}).args.text}")
    assert clean.value == ["nil", "clean"], clean


@pytest.mark.parametrize("catcher", CATCHERS)
@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_no_python_object_reaches_a_script(attacked, entry, catcher):
    result = attacked.run(_script(entry, catcher), limits={"calls": 1000, "timeout": 20, "output": 8 << 20})
    assert result.ok, result.error
    assert "userdata" not in result.value, (entry, catcher, result.value)


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_uncaught_errors_are_plain_text(attacked, entry, value):
    call = ENTRY_POINTS[entry].replace("V", "(" + HOSTILE[value] + ")")
    result = attacked.run(f"local r = {call} return type(r)", limits={"timeout": 20})
    if result.ok:
        assert result.value != "userdata"
    else:
        assert isinstance(result.error.message, str)
        assert "Traceback" not in result.error.message and "<" + "userdata" not in result.error.message


# The exploit that was reported: a Python exception caught with pcall, walked to __import__.
BREACH = """
local ok, e = pcall(json.decode, [["\\ud800"]])
if type(e) ~= "string" and type(e) ~= "nil" and type(e) ~= "table" then
  return e.__traceback__.tb_frame.f_globals["__builtins__"].__import__("subprocess").getoutput("id")
end
return {ok, e}
"""


def test_the_reported_breach_is_closed(attacked):
    result = attacked.run(BREACH)
    assert result.ok, result.error
    assert result.value == [True, "\ufffd"]


@pytest.mark.parametrize("code", [
    # Each was a way lupa raised outside a callback's own try and handed the exception to pcall.
    'local ok, e = pcall(lua_read_doc, "\\255") return type(e)',
    'local ok, e = pcall(function() return app.integrations["\\255"] end) return type(e)',
    'local ok, e = pcall(print, ("\\u{e9}"):rep(40000)) return type(e)',
])
def test_reported_routes_give_no_object(attacked, code):
    result = attacked.run(code)
    assert not (result.ok and result.value == "userdata"), result


def test_a_leaked_python_object_would_be_inert(bridge):
    # The metatable shared by every wrapped Python object is neutered by the kernel; reach it the only way a
    # script could, through a value the kernel never hands out, to show that even then it does nothing.
    from luabridge._sandbox import _Session

    class Nothing:
        def resolve(self, *a): return ("error", "lookup", "no")
        call = read_doc = list_docs = search_docs = resolve

        def output(self, text): pass

    from luabridge import Limits
    from luabridge._sandbox import KERNEL_CHUNK

    session = _Session(Nothing(), Limits())
    runtime = session.runtime
    runtime.execute(KERNEL_CHUNK, *session.kernel_arguments(), name="=kernel", mode="b")
    probe = runtime.eval("function(obj) local r = {} "
                         "r[1] = select(2, pcall(function() return obj.__class__ end)) "
                         "r[2] = select(2, pcall(function() return obj() end)) "
                         "r[3] = tostring(obj) return r end")
    refused_index, refused_call, shown = probe(ValueError("secret")).values()
    assert refused_index.endswith("host objects cannot be used from scripts")
    assert refused_call.endswith("host objects cannot be used from scripts")
    assert shown == "host object"


# Ways a script might try to reach past an error value's facts: each must fail or give plain data.
ERROR_VALUE_ATTACKS = {
    "getmetatable": "return getmetatable(err)",
    "setmetatable": "return setmetatable(err, {})",
    "write_a_field": "err.type = 'forged' return err.type",
    "write_a_new_field": "err.x = 1 return err.x",
    "metatable_names": "return {err.__index, err.__metatable, err.__tostring, err.__pairs, err.__gc}",
    "rawget": "return {rawget(err, 'message'), rawlen(err), next(err)}",
    "pairs_then_write": "for k, v in pairs(err) do err[k] = 'x' end return err.message",
    "pairs_copy_is_a_copy": "local _, copy = pairs(err) copy.message = 'forged' return err.message",
    "method_on_something_else": "return err.upper('abc')",
    "method_rep_is_capped": "return err:rep(1e12)",
    "method_with_a_hostile_self": "return err.find(setmetatable({}, {__index = function() error('no') end}), 'x')",
    "string_library_replaced": "string.find = function() return 'script own' end return err:find('x')",
    "concat_with_a_table": "return err .. {}",
    "tostring_of_the_method": "return tostring(err.find):find('builtin') ~= nil",
    "compare": "return err == tostring(err), err < err",
    "call": "return err()",
    "as_a_key": "local t = {[err] = 1} return json.encode({t[err]})",
    "json_roundtrip": "return json.decode(json.encode(err))",
    "load_with_it": "return load(err)",
}


@pytest.mark.parametrize("attack", ERROR_VALUE_ATTACKS)
def test_an_error_value_is_facts_and_nothing_more(attacked, attack):
    code = COLLECT + (
        "local _, err = pcall(app.integrations.echo.fail)\n"
        f"local function F() {ERROR_VALUE_ATTACKS[attack]} end\n"
        "seen(pcall(F)) seen(err)\n"
        "local report = select(2, pcall(app.integrations.echo.fail))\n"
        "local out = {} for t in pairs(types) do out[#out + 1] = t end table.sort(out) "
        "return {out, tostring(report), report.type, report.status}"
    )
    result = attacked.run(code, limits={"timeout": 20})
    if not result.ok:  # a limit (string.rep): the run ends, the host does not
        assert result.error.type == "memory", result.error
        return
    types, text, kind, status = result.value
    assert "userdata" not in types, (attack, types)
    line = COLLECT.count("\n") + 4
    assert (text, kind, status) == (f"script:{line}: echo.fail: HTTP 503 UNAVAILABLE: try later", "http", 503)


def test_an_error_value_reports_the_facts_the_kernel_holds(attacked):
    result = attacked.run("local _, err = pcall(app.integrations.echo.fail) pcall(setmetatable, err, nil) "
                          "pcall(rawset, err, 'type', 'runtime') error(err)")
    assert result.error.type == "http"
    assert result.error.message == "script:1: echo.fail: HTTP 503 UNAVAILABLE: try later"
