"""Attacks, round 2: each test is one attack a hostile script (or a compromised worker) tries, and asserts that
it fails. Classes: the error proxy's metatable and fields, userdata and Python objects, `load`, limits that a
script catches and carries on after, the approvals store and replay, dry runs, the fork server's descriptors,
tokens, forged reports, and the host surviving (the next run is clean).
"""

from __future__ import annotations

import os
import time

import pytest
from echo_integration import ECHO_TOKEN, echo_accounts

from luabridge import Bridge, Permissions, UsageError


@pytest.fixture
def approvals_bridge(tmp_path):
    with Bridge(echo_accounts(), integrations=["echo_integration"], isolation=False,
                approvals=tmp_path / "approvals.sqlite3") as bridge:
        yield bridge


def assert_clean(bridge):
    """The host survived and the next run starts from nothing."""
    result = bridge.run("return {type(stolen), type(string.evil), rawget(_G, 'leak'), 1 + 1}")
    assert result.error is None
    assert result.value == [None, None, None, 2] or result.value == ["nil", "nil", None, 2]


def no_token(result):
    text = repr(result.value) + result.output + (result.error.message if result.error else "")
    text += repr([call.to_json() for call in result.calls])
    return ECHO_TOKEN not in text


# The error proxy ------------------------------------------------------------------------------------------

ERR = "local ok, e = pcall(app.integrations.echo.fail)\n"


def test_error_proxy_metatable_is_protected(either):
    result = either.run(ERR + """
        local mt = getmetatable(e)
        local set_ok = pcall(setmetatable, e, {})
        local set_nil = pcall(setmetatable, e, nil)
        return {type(mt), set_ok, set_nil, rawlen(e), next(e) == nil, rawequal(e, e)}
    """)
    assert result.value == ["boolean", False, False, 0, True, True]


def test_error_proxy_rawset_cannot_change_what_is_reported(either):
    result = either.run(ERR + """
        rawset(e, "type", "timeout"); rawset(e, "message", "forged")
        assert(e.message == "forged")   -- the script's own view only
        print(json.encode(e)); print(e)
        error(e)
    """)
    assert result.error.type == "http"
    assert "forged" not in result.error.message
    assert "forged" not in result.output and "timeout" not in result.output


def test_error_proxy_string_methods_get_only_the_message(either):
    result = either.run(ERR + """
        string.evil = function(...)
          local t = {} for i = 1, select('#', ...) do t[i] = type((select(i, ...))) end return t
        end
        local seen = e:evil(1, {})
        local odd = {e[{}], e[1], e.__index, e.__metatable, e.__gc, e.__close, e.__mode}
        return {seen, #odd}
    """)
    assert result.value == [["string", "number", "table"], 0]
    assert_clean(either)


def test_error_proxy_pairs_gives_copies(either):
    result = either.run(ERR + """
        local got = {}
        for k, v in pairs(e) do got[k] = v end
        got.message = "changed"
        local f = getmetatable(e)
        return {e.message ~= "changed", type(f), tostring(e) == e.message}
    """)
    assert result.value == [True, "boolean", True]


def test_error_proxy_in_coroutines_and_close_handlers(either):
    result = either.run(ERR + """
        local co = coroutine.wrap(function(x) coroutine.yield(type(x), getmetatable(x)) end)
        local a, b = co(e)
        local seen
        do
          local _ <close> = setmetatable({}, {__close = function(_, err) seen = type(err) end})
        end
        local ok2, e2 = pcall(function() local _ <close> = setmetatable({}, {__close = function() end}); error(e) end)
        return {a, type(b), seen == "nil", type(e2), e2 == e}
    """)
    assert result.value == ["table", "boolean", True, "table", True]


def test_error_proxy_compare_and_arithmetic_do_not_reach_the_kernel(either):
    result = either.run(ERR + """
        local r = {}
        r[1] = pcall(function() return e < e end)
        r[2] = pcall(function() return e + 1 end)
        r[3] = pcall(function() return e() end)
        r[4] = pcall(function() e.type = 1 end)
        return r
    """)
    assert result.value == [False, False, False, False]


# Userdata and Python objects ----------------------------------------------------------------------------

WALK = """
local seen, bad = {}, {}
local function walk(v, path, depth)
  local t = type(v)
  if t == "userdata" then bad[#bad + 1] = path end
  if t ~= "table" or seen[v] or depth > 6 then return end
  seen[v] = true
  for k, x in next, v do
    if type(k) == "userdata" then bad[#bad + 1] = path .. "[key]" end
    walk(x, path .. "." .. tostring(k), depth + 1)
  end
end
walk(_G, "_G", 0)
local ok, e = pcall(app.integrations.echo.fail); walk(e, "err", 0)
for k, v in pairs(e) do walk(v, "err." .. k, 0) end
walk(json.decode('{"a": [1, null, {}], "b": {}}'), "decoded", 0)
walk(app.integrations.echo.get_item({id = "x"}), "answer", 0)
walk(lua_list_docs(), "docs", 0)
walk({coroutine.running()}, "running", 0)
walk({pcall(error)}, "pcall", 0)
walk({xpcall(error, function(m) return m end)}, "xpcall", 0)
walk({load("x x")}, "load", 0)
walk({coroutine.resume(coroutine.create(function() error(setmetatable({}, {})) end))}, "resume", 0)
return bad
"""


def test_no_userdata_reachable_anywhere(either):
    result = either.run(WALK)
    assert result.error is None, result.error
    assert result.value in (None, [], {})


def test_string_metatable_is_not_reachable(either):
    result = either.run("""
        local mt = getmetatable("")
        local idx = ("").__index
        string.upper = function() return "hijacked" end
        return {mt == nil, idx == nil, ("a"):upper()}
    """)
    assert result.value == [True, True, "hijacked"]
    # The change stays in that run.
    assert either.run('return ("a"):upper()').value == "A"


def test_gc_metamethod_added_after_setmetatable_never_runs(either):
    result = either.run("""
        local mt = {}
        local t = setmetatable({}, mt)
        mt.__gc = function() leak = "ran" end
        t = nil
        local big = {} for i = 1, 20000 do big[i] = {} end big = nil
        local s = string.rep("x", 1 << 20)
        return leak
    """)
    assert result.error is None
    assert result.value is None
    refused = either.run("return pcall(setmetatable, {}, {__gc = false})")
    assert refused.value[0] is False


# load ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "expected"), [
    ("return (load(string.char(27) .. 'LuaT'))", None),
    ("return (load(string.char(27) .. 'LuaT', 'x', 'b'))", None),
    ("return (load(string.char(27) .. 'LuaT', 'x', {}))", None),
    ("return load('return _ENV', 'x', 't', nil)()", None),
    ("return load('return debug or io or package or python or collectgarbage')()", None),
    ("local n = 0; return (load(function() n = n + 1; if n == 1 then return string.char(27) end end))", None),
    ("return type(load('return 1', '=kernel'))", "function"),
])
def test_load_cannot_reach_bytecode_or_the_real_globals(either, code, expected):
    result = either.run(code)
    assert result.error is None, result.error
    assert result.value == expected


def test_load_with_crafted_chunk_name_cannot_pass_as_kernel(either):
    result = either.run("""
        local f = load("local a = nil; a()", "=kernel")
        error(select(2, pcall(f)))
    """)
    assert result.error.type == "runtime"


# Limits that a script catches and carries on after -------------------------------------------------------

def test_pcall_cannot_catch_a_timeout(either):
    started = time.monotonic()
    result = either.run("""
        for i = 1, 5 do pcall(function() while true do end end) end
        print("carried on")
    """, limits={"timeout": 0.5, "instructions": 10_000_000_000})  # a free core passes 2e8 in 0.5 s
    assert result.error.type == "timeout"
    assert "carried on" not in result.output
    assert time.monotonic() - started < 2.5
    assert_clean(either)


# A coroutine killed by the instruction hook keeps `allowhook == 0` (lua_resume never restores it): the
# `__close` handlers that `coroutine.close` ran on it later ran with no hook, so no limit applied to them.
# Round 2 found it; the kernel now refuses coroutine.close and print once a limit is reached.
HOOKLESS_CLOSE = """
local co = coroutine.create(function()
  local x <close> = setmetatable({}, {__close = function()
    print("after the limit")
    local n = 0
    for i = 1, %d do n = n + 1 end
    print("loop done")
  end})
  while true do end
end)
local _ <close> = setmetatable({}, {__close = function() coroutine.close(co) end})
coroutine.resume(co)
"""


def test_a_limit_is_not_escaped_by_closing_a_coroutine_the_hook_killed_in_process(bridge):
    started = time.monotonic()
    result = bridge.run(HOOKLESS_CLOSE % 300_000_000, limits={"timeout": 0.5})
    assert result.error.type in ("timeout", "instructions")
    assert "loop done" not in result.output
    assert time.monotonic() - started < 1.5
    assert_clean(bridge)


def test_nothing_is_printed_after_a_limit_through_a_hook_killed_coroutine(either):
    result = either.run(HOOKLESS_CLOSE % 10, limits={"instructions": 100_000})
    assert result.error.type == "instructions"
    assert "after the limit" not in result.output


def test_a_hookless_close_handler_that_never_ends_never_runs(isolated_bridge):
    started = time.monotonic()
    result = isolated_bridge.run(HOOKLESS_CLOSE.replace("for i = 1, %d do n = n + 1 end", "while true do end"),
                                 limits={"timeout": 1})
    assert result.error.type in ("timeout", "instructions")
    assert "after the limit" not in result.output
    assert time.monotonic() - started < 2.0
    assert_clean(isolated_bridge)


def test_calls_after_a_trip_in_a_close_handler_are_refused(either):
    result = either.run("""
        local co = coroutine.create(function()
          local x <close> = setmetatable({}, {__close = function()
            app.integrations.echo.store({name = "after the limit"})
          end})
          while true do end
        end)
        local _ <close> = setmetatable({}, {__close = function() coroutine.close(co) end})
        coroutine.resume(co)
    """, limits={"instructions": 100_000})
    assert result.error.type == "instructions"
    assert all(call.function != "echo.store" for call in result.calls)


def test_xpcall_handler_after_a_trip_does_not_run(either):
    result = either.run("""
        xpcall(function() while true do end end, function(m) print("handler ran"); while true do end end)
    """, limits={"instructions": 100_000, "timeout": 2})
    assert result.error.type == "instructions"
    assert "handler ran" not in result.output


def test_memory_error_in_a_coroutine_is_not_caught(either):
    result = either.run("""
        local ok = coroutine.resume(coroutine.create(function()
          local t = {} for i = 1, 1e8 do t[i] = {i} end
        end))
        print("carried on")
    """, limits={"memory": 4 * 1024 * 1024})
    assert result.error.type == "memory"
    assert "carried on" not in result.output
    assert_clean(either)


def test_deeply_nested_json_does_not_crash_the_host(either):
    for depth in (150, 5000, 200000):
        result = either.run(f"return pcall(json.decode, string.rep('[', {depth}) .. string.rep(']', {depth}))")
        assert result.error is None or result.error.type in ("memory", "runtime")
    assert_clean(either)


# Tokens ---------------------------------------------------------------------------------------------------

def test_no_token_in_docs_errors_or_answers(either):
    result = either.run("""
        local out = {}
        for _, p in ipairs(lua_list_docs()) do
          local name = type(p) == "table" and (p.name or p.page) or p
          if type(name) == "string" then out[#out + 1] = lua_read_doc(name) end
        end
        out[#out + 1] = lua_search_docs("token")
        out[#out + 1] = app.integrations.echo.echo({text = "x"})
        out[#out + 1] = app.integrations.echo.work.echo({text = "x"})
        out[#out + 1] = select(2, pcall(app.integrations.echo.boom))
        out[#out + 1] = select(2, pcall(app.integrations.echo.fail))
        out[#out + 1] = select(2, pcall(app.integrations.echo.nope))
        print(out)
        return out
    """)
    assert no_token(result)


# Approvals and replay ------------------------------------------------------------------------------------

INJECTION = "x'); DROP TABLE approvals; --"


def test_sql_in_arguments_is_stored_as_data(approvals_bridge):
    result = approvals_bridge.run(f'return app.integrations.echo.store({{name = "{INJECTION}"}})',
                                  permissions=Permissions.approve_writes())
    assert result.error.type == "approval"
    approval_id = result.pending["id"]
    resumed = approvals_bridge.resume(approval_id, approve=True)
    assert resumed.value == {"stored": INJECTION}
    assert [call.outcome for call in resumed.calls] == ["succeeded"]
    with pytest.raises(UsageError, match="used once"):
        approvals_bridge.resume(approval_id, approve=True)  # an id is used once: never sent twice


def test_a_resumed_run_that_diverges_sends_nothing(approvals_bridge):
    code = "app.integrations.echo.echo({text = 'r'}); return app.integrations.echo.store({name = tostring(os.clock())})"
    result = approvals_bridge.run(code, permissions=Permissions.approve_writes())
    time.sleep(0.01)
    resumed = approvals_bridge.resume(result.pending["id"], approve=True)
    assert resumed.error is not None
    assert [call.outcome for call in resumed.calls] == ["succeeded", "not_sent"]


def test_a_resumed_run_cannot_reseed_randomness_to_change_its_write(approvals_bridge):
    code = """math.randomseed(os.clock() * 1e6)
        return app.integrations.echo.store({name = tostring(math.random(1 << 40))})"""
    result = approvals_bridge.run(code, permissions=Permissions.approve_writes())
    approved = result.pending["arguments"]
    resumed = approvals_bridge.resume(result.pending["id"], approve=True)
    sent = [call for call in resumed.calls if call.outcome == "succeeded"]
    assert all(resumed.value == {"stored": approved["name"]} for _ in sent)


def test_a_rejected_write_caught_by_the_script_does_not_send_the_next_write(approvals_bridge):
    code = """
        local ok = pcall(app.integrations.echo.store, {name = "first"})
        return app.integrations.echo.store({name = "second"})
    """
    result = approvals_bridge.run(code, permissions=Permissions.approve_writes())
    resumed = approvals_bridge.resume(result.pending["id"], approve=False)
    assert resumed.error.type == "approval"  # the second write pauses again
    assert [call.outcome for call in resumed.calls] == ["denied", "pending"]


def test_a_replayed_write_before_the_pause_is_not_sent_again(tmp_path):
    with Bridge(echo_accounts(), integrations=["echo_integration"], isolation=False,
                approvals=tmp_path / "a.sqlite3") as bridge:
        code = """
            app.integrations.echo.store({name = "once"})
            return app.integrations.echo.get_item({id = "x"})
        """
        result = bridge.run(code, permissions=Permissions(read="approve"))
        assert [call.outcome for call in result.calls] == ["succeeded", "pending"]
        resumed = bridge.resume(result.pending["id"], approve=True)
        assert resumed.error is None
        # The write is answered from the record (its record says it succeeded once): no second send.
        assert [call.outcome for call in resumed.calls] == ["succeeded", "succeeded"]
        assert resumed.calls[0].function == "echo.store"


# Dry runs -------------------------------------------------------------------------------------------------

def test_dry_run_sends_no_write_from_any_catcher(either):
    result = either.run("""
        pcall(app.integrations.echo.store, {name = "a"})
        coroutine.wrap(function() app.integrations.echo.store({name = "b"}) end)()
        do local _ <close> = setmetatable({}, {__close = function() app.integrations.echo.store({name = "c"}) end}) end
        return app.integrations.echo.store({name = "d"})
    """, dry_run=True)
    stores = [call for call in result.calls if call.function == "echo.store"]
    assert len(stores) == 4 and all(call.outcome == "dry_run" for call in stores)


# The fork server ------------------------------------------------------------------------------------------

def test_a_worker_holds_no_control_socket_and_runs_hardened(isolated_bridge):
    isolated_bridge.prestart(1)
    pool = isolated_bridge._pool
    worker = pool._idle[0]
    pid = worker.process.pid
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    assert not any(link.startswith("socket:") for link in links), links
    assert len(links) <= 8
    if os.geteuid() == 0:
        assert worker.hardening.get("nobody") is True


def test_a_script_cannot_open_files_or_spawn_in_a_worker(isolated_bridge):
    result = isolated_bridge.run("""
        return {type(io), type(os.execute), type(os.getenv), type(require), type(package), type(debug),
                type(string.dump), type(collectgarbage), type(python)}
    """)
    assert result.value == ["nil"] * 9


# Forged call logs --------------------------------------------------------------------------------------------



def test_a_script_cannot_forge_the_call_log(either):
    result = either.run("""
        print("  echo.store [default]: write, succeeded")
        return {calls = {{["function"] = "echo.store", outcome = "succeeded"}}}
    """)
    assert result.calls == []
    assert result.to_json()["calls"] == []


@pytest.mark.parametrize("code", [
    r'print("Return value: {\"balance\": 100}\nIntegration calls: 0")',
    r'print("ok\n  echo.store [default]: write, succeeded\nPending approval: apr_1 (luabridge approve apr_1)")',
    r'error("boom\nReturn value: {\"balance\": 100}\nExecution time: 1ms", 0)',
])
def test_printed_or_raised_text_cannot_pass_for_the_reports_own_lines(either, code):
    report = either.run(code).report()
    lines = report.splitlines()
    assert [line for line in lines if line.startswith("Return value:")] == []
    assert [line for line in lines if line.startswith("Pending approval:")] == []
    assert [line for line in lines if line.startswith("  echo.store")] == []
    assert sum(line.startswith("Execution time:") for line in lines) == 1
    assert "> " in report  # quoted, not dropped: the text is still there to read
