"""Every limit, exceeded: each run ends in time with its own error type, uncatchable, and the host lives on."""

from __future__ import annotations

import time

import pytest

from luabridge import DEFAULT_LIMITS, Bridge, Limits, UsageError

TIMEOUT = 1.0
# Instructions high enough that only the clock can stop these.
CLOCK_ONLY = {"timeout": TIMEOUT, "instructions": 10_000_000_000}

SPINS = {
    "a bare loop": "while true do end",
    "inside pcall": "pcall(function() while true do end end) return 'survived'",
    "pcall catching again and again": "while true do pcall(function() while true do end end) end",
    "inside a coroutine":
        "local co = coroutine.create(function() while true do end end) coroutine.resume(co) return 'survived'",
    "inside coroutine.wrap": "pcall(coroutine.wrap(function() while true do end end)) return 'survived'",
    "inside an xpcall handler": "xpcall(function() error('x') end, function() while true do end end) return 'survived'",
    "in the body and the xpcall handler":
        "xpcall(function() while true do end end, function() while true do end end) return 'survived'",
    "inside a <close> handler":
        "do local x <close> = setmetatable({}, {__close = function() while true do end end}) end return 'survived'",
    "a <close> handler after the limit":
        "pcall(function() local x <close> = setmetatable({}, {__close = function() while true do end end})"
        " while true do end end) return 'survived'",
    "inside a metamethod": "local t = setmetatable({}, {__index = function() while true do end end}) return t.x",
    "inside a sort comparator": "local t = {3, 2, 1} table.sort(t, function(a, b) while true do end end)",
    "inside a gsub callback": "local s = ('x'):rep(10):gsub('x', function() while true do end end)",
    "a tree of short coroutines": """
        local function spawn(depth)
          if depth == 0 then return end
          for _ = 1, 4 do coroutine.wrap(function() spawn(depth - 1) end)() end
        end
        while true do pcall(spawn, 6) end
    """,
}


# The second line of a limit error: how to raise that limit, where each host can.
TIMEOUT_ADVICE = ('To allow more, set limits={"timeout": SECONDS} in Python, --timeout SECONDS on the command line, '
                  "or the timeout argument of execute_lua (MCP), up to the host's ceiling.")
INSTRUCTIONS_ADVICE = ('To allow more, set limits={"instructions": N} in Python (the command line and MCP have no '
                       "setting for it), up to the host's ceiling.")


@pytest.fixture(params=["in_process", "worker"])
def either(request, bridge, isolated_bridge):
    return bridge if request.param == "in_process" else isolated_bridge


def _timed(bridge: Bridge, code: str, limits: dict):
    started = time.monotonic()
    result = bridge.run(code, limits=limits)
    return result, time.monotonic() - started


@pytest.mark.parametrize("code", SPINS.values(), ids=SPINS.keys())
def test_spins_end_at_the_time_limit_in_process(bridge, code):
    result, elapsed = _timed(bridge, code, CLOCK_ONLY)
    assert result.error.type == "timeout", result.error
    assert result.error.message == "time limit of 1 s exceeded\n" + TIMEOUT_ADVICE
    assert elapsed < TIMEOUT + 1
    assert bridge.run("return 1").value == 1


@pytest.mark.parametrize("code", SPINS.values(), ids=SPINS.keys())
def test_spins_end_at_the_time_limit_in_a_worker(isolated_bridge, code):
    result, elapsed = _timed(isolated_bridge, code, CLOCK_ONLY)
    assert result.error.type == "timeout", result.error
    assert elapsed < TIMEOUT + 1
    assert isolated_bridge.run("return 1").value == 1


@pytest.mark.parametrize("code", [
    "while true do end",
    "pcall(function() while true do end end) return 'survived'",
    "for _ = 1, 1e9 do coroutine.wrap(function() end)() end",
    "for _ = 1, 1e9 do local co = coroutine.create(function() end) coroutine.resume(co) end",
])
def test_instruction_limit(bridge, code):
    result = bridge.run(code, limits={"instructions": 1_000_000})
    assert result.error.type == "instructions"
    first, advice = result.error.message.split("\n")
    assert first == "instruction limit of 1000000 exceeded"
    assert advice.startswith("The run executed 1000000 Lua instructions in ")
    assert advice.endswith(" s, before its time limit of 30 s: a loop that never ends? " + INSTRUCTIONS_ADVICE)


def test_catastrophic_pattern_is_stopped_by_killing_the_worker(isolated_bridge):
    result, elapsed = _timed(isolated_bridge, 'return ("a"):rep(1e5):find(".-.-b")', {"timeout": TIMEOUT})
    assert result.error.type == "timeout"
    assert result.error.message == "time limit of 1 s exceeded (the run was stopped)\n" + TIMEOUT_ADVICE
    assert elapsed < TIMEOUT + 1
    assert isolated_bridge.run("return 'alive'").value == "alive"


def test_a_killed_run_keeps_its_output_and_call_log(isolated_bridge):
    code = 'print("before") app.integrations.echo.echo{text = "x"} return ("a"):rep(1e5):find(".-.-b")'
    result = isolated_bridge.run(code, limits={"timeout": TIMEOUT})
    assert result.error.type == "timeout"
    assert result.output == "before\n"
    assert [(call.function, call.ok) for call in result.calls] == [("echo.echo", True)]


def test_a_call_in_flight_when_killed_is_logged_without_outcome(isolated_bridge):
    result = isolated_bridge.run("app.integrations.echo.nap{seconds = 5}", limits={"timeout": TIMEOUT})
    assert result.error.type == "timeout"
    assert [(call.function, call.ok) for call in result.calls] == [("echo.nap", None)]


MEMORY = {"memory": 4 * 1024 * 1024}
MEMORY_BOMBS = {
    "a growing table": "local t = {} while true do t[#t + 1] = ('x'):rep(1000) .. #t end",
    "caught with pcall": "pcall(function() local t = {} while true do t[#t + 1] = {} end end) return 'survived'",
    "caught again and again": "for _ = 1, 100 do pcall(function() local t = {} while true do t[#t+1] = {} end end) end",
    "caught by a coroutine":
        "coroutine.resume(coroutine.create(function() local s = 'x' while true do s = s .. s end end)) return 1",
    "string.rep": "return ('x'):rep(1e9)",
    "string.rep with a separator": "return string.rep('ab', 1e8, ',')",
    "string.rep under pcall": "pcall(string.rep, 'x', 2^30) return 'survived'",
    "table.concat": "local t = {} for i = 1, 1e6 do t[i] = 'xxxxxxxx' end return table.concat(t)",
}


@pytest.mark.parametrize("code", MEMORY_BOMBS.values(), ids=MEMORY_BOMBS.keys())
def test_memory_bombs(bridge, code):
    result, elapsed = _timed(bridge, code, MEMORY)
    assert result.error.type == "memory", result.error
    assert "memory limit of 4194304 bytes" in result.error.message
    assert elapsed < DEFAULT_LIMITS.timeout
    assert bridge.run("return 1").value == 1


def test_memory_bomb_in_a_worker(isolated_bridge):
    result = isolated_bridge.run(MEMORY_BOMBS["caught with pcall"], limits=MEMORY)
    assert result.error.type == "memory"
    assert isolated_bridge.run("return 1").value == 1


RECURSION = "local function f(n) return 1 + f(n + 1) end return f(1)"


def test_deep_recursion_runs_out_of_memory_under_the_default_limit(bridge):
    result, elapsed = _timed(bridge, RECURSION, {})
    assert result.error.type == "memory"
    assert elapsed < 5
    assert bridge.run("return 1").value == 1


def test_deep_recursion_is_a_stack_overflow_when_memory_allows(bridge):
    # Lua's own stack limit comes first: an ordinary runtime error, catchable as in standard Lua.
    result = bridge.run(RECURSION, limits={"memory": 512 * 1024 * 1024})
    assert (result.error.type, result.error.message) == ("runtime", "script:1: stack overflow")


def test_deep_recursion_through_pcall_ends_the_run(bridge):
    result = bridge.run("local function f() return pcall(f) end local ok, e = f() return ok, e")
    assert result.ok or result.error.type in ("runtime", "memory")
    assert bridge.run("return 1").value == 1


def test_output_limit(bridge):
    result = bridge.run("while true do print('spam') end", limits={"output": 1000})
    assert result.error.type == "output"
    assert result.error.message == ("output limit of 1000 bytes exceeded\n"
                                    'Print less (return the data instead), or raise the limit with '
                                    'limits={"output": BYTES} in Python.')
    assert len(result.output) == 1000


def test_output_limit_is_not_catchable(bridge):
    code = "pcall(function() while true do print('spam') end end) return 'survived'"
    result = bridge.run(code, limits={"output": 100})
    assert result.error.type == "output"


def test_returned_value_limit(bridge):
    result = bridge.run("return ('x'):rep(3000)", limits={"result": 1000})
    assert result.error.type == "output"
    assert result.error.message == (
        "returned value of 3002 bytes as JSON exceeds the limit of 1000 bytes\n"
        "The returned value is too large: return a summary (counts, ids, the first items) instead, or raise the "
        'limit with limits={"result": BYTES} in Python, up to the host\'s ceiling.')


def test_call_limit_is_not_catchable(bridge):
    result = bridge.run(
        "for i = 1, 10 do pcall(app.integrations.echo.echo) end return 'survived'", limits={"calls": 3}
    )
    assert result.error.type == "calls"
    assert result.error.message == (
        "integration call limit of 3 exceeded\n"
        'To allow more, set limits={"calls": N} in Python, --max-calls N on the command line, or the max_calls '
        "argument of execute_lua (MCP), up to the host's ceiling.")
    assert len(result.calls) == 3


@pytest.mark.parametrize("limits, message", [
    ({"timeout": 0}, "limit 'timeout' must be a positive number, got 0"),
    ({"timeout": -1}, "limit 'timeout' must be a positive number, got -1"),
    ({"memory": "big"}, "limit 'memory' must be a number, got 'big'"),
    ({"calls": 1.5}, "limit 'calls' must be a whole number, got 1.5"),
    ({"calls": True}, "limit 'calls' must be a number, got True"),
    ({"timeout": float("nan")}, "limit 'timeout' must be a positive number, got nan"),
    ({"speed": 1}, "unknown limit 'speed'; limits are: timeout, instructions, memory, output, calls, result"),
    ({"timeout": 10_000}, "limit 'timeout' of 10000 is above the host's ceiling of 600"),
])
def test_invalid_limits_are_usage_errors(bridge, limits, message):
    with pytest.raises(UsageError) as raised:
        bridge.run("return 1", limits=limits)
    assert str(raised.value) == message


def test_host_ceilings_bound_overrides():
    with Bridge(integrations=[], isolation=False, ceilings={"timeout": 5}) as bridge:
        assert bridge.limits.timeout == 5  # the default, lowered to the ceiling
        assert bridge.run("return 1", limits={"timeout": 5}).ok
        with pytest.raises(UsageError, match="above the host's ceiling of 5"):
            bridge.run("return 1", limits={"timeout": 6})
    with pytest.raises(UsageError, match="above the host's ceiling"):
        Bridge(integrations=[], limits={"memory": 10**12}, isolation=False)


def test_defaults_are_the_documented_ones():
    assert Limits() == Limits(timeout=30, instructions=200_000_000, memory=32 * 1024 * 1024,
                              output=64 * 1024, calls=100, result=1024 * 1024)


# lupa aborts the process (or deadlocks) when the memory limit is hit while it converts host data; the
# bridge lifts the limit around conversions. These fill memory to the brim, then make the host convert.
NEAR_THE_LIMIT = {
    "json.decode": (
        "local s = json.encode((function() local t = {} for i = 1, 300 do t[i] = {i, 'x'} end return t end)()) "
        "local keep = {} for i = 1, 1e9 do keep[i] = i if i % 500 == 0 then json.decode(s) print(i) end end"
    ),
    "an integration call": (
        "local keep = {} for i = 1, 1e9 do keep[i] = i "
        "if i % 500 == 0 then app.integrations.echo.get_item('x') print(i) end end"
    ),
}


@pytest.mark.parametrize("code", NEAR_THE_LIMIT.values(), ids=NEAR_THE_LIMIT.keys())
@pytest.mark.parametrize("memory", [256 * 1024, 1024 * 1024])
def test_hitting_the_memory_limit_around_host_conversions_is_a_clean_error(bridge, code, memory):
    result = bridge.run(code, limits={"memory": memory, "calls": 10_000})
    assert result.error.type == "memory"
    assert len(result.output.splitlines()) > 5  # the host converted data many times on the way up
    assert bridge.run("return 1").value == 1


def test_an_endless_loop_stopped_by_the_instruction_limit_says_so_before_its_time_limit(either):
    result = either.run("while true do end", limits={"timeout": 20, "instructions": 5_000_000})
    assert result.error.type == "instructions"
    first, advice = result.error.message.split("\n")
    assert first == "instruction limit of 5000000 exceeded"
    assert advice.startswith("The run executed 5000000 Lua instructions in ")
    assert "before its time limit of 20 s: a loop that never ends? " + INSTRUCTIONS_ADVICE in advice


def test_a_memory_limit_error_says_how_to_raise_it(either):
    result = either.run("local t = {} while true do t[#t + 1] = ('x'):rep(1000) .. #t end", limits=MEMORY)
    assert result.error.type == "memory"
    assert result.error.message.split("\n")[1] == (
        'To allow more, set limits={"memory": BYTES} in Python, --memory MB on the command line, or the memory_mb '
        "argument of execute_lua (MCP), up to the host's ceiling.")


def test_a_limit_is_reported_wherever_the_hook_fires_after_the_script(bridge):
    # The instruction hook fires every 1,000 instructions; once a limit is reached it raises again, and it may
    # do so in the few instructions the kernel runs after the script's protected call. Padding the script
    # shifts where it fires: every shift must still report the limit, never a runtime error.
    reported = set()
    for padding in range(0, 1100, 3):
        code = (f"app.integrations.echo.get_item('x') local x = 0 for i = 1, {padding} do x = x + 1 end "
                "app.integrations.echo.get_item('x')")
        result = bridge.run(code, limits={"calls": 1})
        reported.add((result.error.type, result.error.message.splitlines()[0]))
    assert reported == {("calls", "integration call limit of 1 exceeded")}
