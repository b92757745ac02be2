"""The sandbox, attacked: every way out to Python or the OS must fail, and what it keeps must be standard."""

from __future__ import annotations

import lupa.lua54 as lua54
import pytest

ALLOWED_GLOBALS = sorted(
    "_G _VERSION app assert coroutine error getmetatable ipairs json load lua_list_docs lua_read_doc "
    "lua_search_docs math next os pairs pcall print rawequal rawget rawlen rawset select setmetatable "
    "string table tonumber tostring type utf8 xpcall".split()
)


def test_globals_are_exactly_the_allow_list(run):
    result = run("local names = {} for k in pairs(_G) do names[#names + 1] = k end table.sort(names) return names")
    assert result.value == ALLOWED_GLOBALS


@pytest.mark.parametrize("library, names", [
    ("os", ["clock", "date", "difftime", "time"]),
    ("coroutine", ["close", "create", "isyieldable", "resume", "running", "status", "wrap", "yield"]),
    ("string", ["byte", "char", "find", "format", "gmatch", "gsub", "len", "lower", "match", "pack",
                "packsize", "rep", "reverse", "sub", "unpack", "upper"]),
])
def test_libraries_keep_only_safe_functions(run, library, names):
    result = run(f"local t = {{}} for k in pairs({library}) do t[#t + 1] = k end table.sort(t) return t")
    assert result.value == names


@pytest.mark.parametrize("expression", [
    "python", "io", "debug", "package", "require", "dofile", "loadfile", "collectgarbage", "string.dump",
    "os.execute", "os.getenv", "os.exit", "os.remove", "os.rename", "os.tmpname", "io and io.open",
    "package and package.loadlib", "rawget(_G, 'python')", "load('return python')()", "load('return io')()",
])
def test_escape_routes_are_absent(run, expression):
    result = run(f"return ({expression}) == nil")
    assert result.ok, result.error
    assert result.value is True


def test_python_eval_is_unreachable(run):
    result = run("return python.eval('1+1')")
    assert result.error.type == "runtime"
    assert "attempt to index a nil value (global 'python')" in result.error.message


def test_load_defaults_to_the_sandbox_environment(run):
    assert run("return load('return _G')() == _G and load('return os.execute')() == nil").value is True


def test_load_refuses_binary_chunks(run):
    result = run(r"return load('\27Lua' .. string.rep('x', 20))")
    assert result.value == [None, "attempt to load a binary chunk (mode is 't')"]


def test_load_refuses_binary_mode(run):
    assert run("return load('return 1', 'x', 'b')").value == [None, "attempt to load a text chunk (mode is 'b')"]


def test_load_with_explicit_env_uses_it(run):
    assert run("return load('return x', 'chunk', 't', {x = 5})()").value == 5


def test_string_metatable_is_hidden(run):
    assert run("return getmetatable('')").value is None


def test_string_methods_use_the_sandbox_string_table(run):
    result = run("string.upper = function() return 'patched' end return ('abc'):upper()")
    assert result.value == "patched"  # the script's own copy: it changes nothing outside this run


def test_changes_to_libraries_do_not_leak_into_the_next_run(bridge):
    bridge.run("string.upper = nil; os.time = nil; _G.leak = 1")
    assert bridge.run("return ('a'):upper(), type(os.time), leak").value == ["A", "function", None]


def test_a_script_that_breaks_its_libraries_breaks_only_its_own_code(run):
    # math, table and utf8 are the runtime's own tables; the kernel reads none of them after it loads.
    sabotage = ("for _, lib in ipairs({math, table, utf8, string, coroutine, os}) do "
                "for name in pairs(lib) do lib[name] = error end end ")
    code = (sabotage + "print({a = {1, 2}}, 1.5, 'x') "
            "local ok, e = pcall(function() return app.integrations.nothing end) "
            "return {math.huge ~= nil, type(json.encode({1})), select(2, pcall(error, 'mine')), ok}")
    result = run(code)
    assert result.ok, result.error
    assert result.output == '{"a": [1, 2]}\t1.5\tx\n'
    assert result.value == [True, "string", "mine", False]
    # Its limits still hold: the hook and the memory count use no library of the script's.
    assert run(sabotage + "while true do end", limits={"instructions": 100_000}).error.type == "instructions"
    grow = sabotage + "local t = {} for i = 1, 1e9 do t[i] = i end"
    assert run(grow, limits={"memory": 1 << 20}).error.type == "memory"


def test_gc_metamethods_are_refused(run):
    result = run("setmetatable({}, {__gc = function() while true do end end})")
    assert result.error.message == "script:1: setmetatable: __gc metamethods are not allowed in the sandbox"


def test_gc_added_after_setmetatable_never_runs(run):
    result = run("local mt = {} setmetatable({}, mt) mt.__gc = function() error('ran') end return 'done'")
    assert result.value == "done"


@pytest.mark.parametrize("value", ["print", "app", "app.integrations", "coroutine.create(function() end)", "1", "true"])
def test_getmetatable_shows_nothing_of_host_values(run, value):
    assert run(f"return getmetatable({value})").value in (None, False)


def test_namespaces_are_read_only(run):
    result = run("app.integrations.echo.echo = function() end")
    assert result.error.type == "runtime"
    assert result.error.message == "script:1: app.integrations.echo is read-only"


def test_host_errors_reach_pcall_as_the_kernels_error_values_never_objects(run):
    result = run("""
        local ok, err = pcall(app.integrations.echo.boom)
        local ok2, err2 = pcall(app.integrations.echo.fail)
        return type(err), type(err2), type(tostring(err)), err.type, err2.type, ok, ok2
    """)
    assert result.value == ["table", "table", "string", "runtime", "http", False, False]


def test_internal_errors_do_not_show_python_details(run):
    result = run("local item = app.integrations.echo.boom()")
    assert result.error.message == (
        "script:1: echo.boom: internal error (a bug in the host; details are in its log)"
    )
    assert "KeyError" not in result.error.message and "Traceback" not in result.error.message


def test_values_from_the_host_are_plain_lua_tables(run):
    result = run("""
        local seen = {}
        local function walk(v)
          local t = type(v)
          seen[t] = true
          if t == "table" and v ~= json.null then
            assert(getmetatable(v) == nil, "a host table has a metatable")
            for k, item in pairs(v) do walk(k) walk(item) end
          end
        end
        walk(app.integrations.echo.get_item("a"))
        walk(json.decode('{"a": [1, 2.5, "x", true, null, {}]}'))
        local kinds = {} for k in pairs(seen) do kinds[#kinds + 1] = k end table.sort(kinds)
        return kinds
    """)
    assert result.value == ["boolean", "number", "string", "table"]


def test_python_callbacks_are_not_in_any_reachable_table(run):
    # Everything reachable from _G, walked: only Lua values, no userdata (wrapped Python objects).
    result = run("""
        local seen, found = {}, {}
        local function walk(v, path)
          if type(v) == "userdata" then found[#found + 1] = path end
          if type(v) ~= "table" or seen[v] then return end
          seen[v] = true
          for k, item in next, v do walk(item, path .. "." .. tostring(k)) end
        end
        walk(_G, "_G")
        return #found
    """)
    assert result.value == 0


def test_script_runs_on_the_main_thread(run):
    assert run("local co, main = coroutine.running() return main").value is True


# What the sandbox keeps behaves as in standard Lua 5.4: the same snippets give the same answers.
STANDARD_BEHAVIOUR = [
    "return pcall(error, 'boom')",
    "return pcall(error, {code = 1})",
    "return pcall(function() error('boom') end)",
    "return pcall(function() error('boom', 2) end)",
    "return pcall(function() local x = nil; return x.y end)",
    "return select('#', pcall(function() return 1, nil, 3 end))",
    "return xpcall(function() error('boom') end, function(m) return 'handled: ' .. m end)",
    "return xpcall(function(a, b) return a + b end, print, 2, 3)",
    "return pcall(xpcall)",
    "return pcall(pcall)",
    "return pcall(getmetatable)",
    "return pcall(coroutine.create, 1)",
    "return pcall(coroutine.close, coroutine.running())",
    "return pcall(function() coroutine.resume() end)",
    "return pcall(function() coroutine.wrap(5) end)",
    "return pcall(function() local r = coroutine.resume; r(1) end)",
    "return pcall(function() xpcall(print) end)",
    "return pcall(xpcall, function() end, 5)",
    "local co = coroutine.create(function(a) local b = coroutine.yield(a + 1) error('in co ' .. b) end)\n"
    "local r1 = {coroutine.resume(co, 1)} local r2 = {coroutine.resume(co, 5)}\n"
    "return r1[1], r1[2], r2[1], r2[2], coroutine.status(co)",
    "local f = coroutine.wrap(function() error('wrapped') end) return pcall(f)",
    "local f = coroutine.wrap(function() error({1}) end) local ok, e = pcall(f) return ok, type(e)",
    "local f = coroutine.wrap(function(x) coroutine.yield(x * 2) return 'end' end) return f(4), f()",
    "return pcall(coroutine.wrap(function() end)) , pcall(coroutine.resume)",
    "local co = coroutine.create(function() error('x') end) coroutine.resume(co) return coroutine.close(co)",
    "return coroutine.isyieldable(), coroutine.status(coroutine.running())",
    "local log = {} do local x <close> = setmetatable({}, {__close = function() log[#log+1] = 'closed' end}) end "
    "return log[1]",
    "return pcall(function() local x <close> = setmetatable({}, {__close = function(_, e) error('in close') end}) "
    "error('body') end)",
    "return load('syntax error here')",
    "return load('return ...', 'chunk')(7, 8)",
    "return pcall(load('error(\"in loaded\")', '=loaded'))",
    "return setmetatable({}, {__index = function(t, k) return k .. '!' end}).hi",
    "return getmetatable(setmetatable({}, {__metatable = 'locked'}))",
    "return string.format('%5.2f|%d|%s|%q', 3.14159, 42, 'x', 'a\\nb')",
    "return ('hello world'):gsub('o', '0')",
    "return math.type(1), math.type(1.0), 7 // 2, 7 / 2, 2^53, math.maxinteger + 1 == math.mininteger",
    "return tostring(1e100), tostring(-0.0), tostring(1/0), 10 == 10.0",
    "return #'héllo', utf8.len('héllo')",
    "return table.concat({1, 2, 3}, ','), table.unpack({1, 2, 3})",
    "return tostring(nil), tostring(true), tonumber('0x10'), tonumber('10', 2)",
    "return next({}), rawlen({1, 2}), rawequal('a', 'a'), select(-1, 1, 2, 3)",
    "return os.time{year=2020, month=1, day=1, hour=0}  ~= nil, type(os.clock()), os.date('!%Y', 0)",
]


def _plain_lua(code: str):
    runtime = lua54.LuaRuntime(register_eval=False, register_builtins=False, unpack_returned_tuples=True)
    function = runtime.execute("return function(code) return load(code, '=script', 't')() end")
    try:
        values = function(code)
    except lua54.LuaError as exc:
        return ("error", str(exc).split("\n")[0])
    values = values if isinstance(values, tuple) else (values,)
    return ("ok", [v if not lua54.lua_type(v) else f"<{lua54.lua_type(v)}>" for v in values])


@pytest.mark.parametrize("code", STANDARD_BEHAVIOUR)
def test_kept_functions_behave_as_standard_lua(run, code):
    expected = _plain_lua(code)
    # The same code, its values described in the sandbox the way _plain_lua describes them.
    wrapped = (
        "local r = table.pack((function() " + code + " end)()) "
        "for i = 1, r.n do if type(r[i]) == 'table' or type(r[i]) == 'function' or type(r[i]) == 'thread' "
        "then r[i] = '<' .. (type(r[i]) == 'thread' and 'thread' or type(r[i])) .. '>' "
        "elseif r[i] == nil then r[i] = json.null end end return table.unpack(r, 1, r.n)"
    )
    result = run(wrapped)
    if expected[0] == "error":
        assert result.error is not None and result.error.message == expected[1]
    else:
        assert result.ok, result.error
        got = result.value if isinstance(result.value, list) else [result.value]
        if len(expected[1]) == 1:
            got = [result.value]
        assert got == expected[1]


def test_error_positions_name_the_script_line(run):
    result = run("local x = 1\nlocal y = 2\nerror('boom')")
    assert result.error.message == "script:3: boom"
    result = run("local t = nil\n\nreturn t.x")
    assert result.error.message == "script:3: attempt to index a nil value (local 't')"
    assert run("local ok, e = pcall(error, 'x', 1) return e").value == "x"
    assert run("local ok, e = pcall(function() error('boom') end) return e").value == "script:1: boom"


def test_syntax_errors_have_their_own_type_and_line(run):
    result = run("local a = 1\nlocal b = = 2")
    assert result.error.type == "syntax"
    assert result.error.message == "script:2: unexpected symbol near '='"


def test_a_bug_in_the_host_is_a_plain_error_without_python_details(bridge, monkeypatch, caplog):
    def broken(query, limit=10):
        raise RuntimeError("secret detail of a host bug")

    monkeypatch.setattr(bridge.docs, "search", broken)
    result = bridge.run("local ok, err = pcall(lua_search_docs, 'x') return type(err), tostring(err), err.type")
    assert result.value == [
        "table", "script:1: internal error in lua_search_docs (a bug in the host, logged there)", "runtime"]
    assert "secret detail" not in repr(result.to_json())
    assert "secret detail of a host bug" in caplog.text  # the host's log has it
