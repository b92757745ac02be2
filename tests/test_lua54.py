"""Standard Lua 5.4 where the sandbox once broke it: each case runs in the sandbox and in a plain Lua 5.4
(``lupa.lua54`` without the sandbox) and must give the same answer.

Plain Lua names chunks ``[string "..."]`` where the sandbox says ``script``, so positions are compared
without the chunk name.
"""

from __future__ import annotations

import re

import lupa.lua54
import pytest

CASES = {
    "math.atan with two arguments": "return math.atan(1, 2), math.atan(1)",
    "math.asin": "return math.asin(0.5)",
    "math.acos": "return math.acos(0.5)",
    "a wrapped setmetatable called by a library function":
        "return select(2, pcall(string.gsub, 's', 's', setmetatable))",
    "a wrapped string.rep called by a library function": "return select(2, pcall(string.gsub, 's', 's', string.rep))",
    "setmetatable with a bad argument": "return select(2, pcall(setmetatable, 1))",
    "setmetatable without its second argument": "return select(2, pcall(setmetatable, {}))",
    "setmetatable of a protected metatable":
        "return select(2, pcall(setmetatable, setmetatable({}, {__metatable = 1}), {}))",
    "setmetatable called directly": "local ok, e = pcall(function() setmetatable(1, {}) end) return e",
    "string.rep called directly": "local ok, e = pcall(function() string.rep('x') end) return e",
    "string.rep called as a method": "local ok, e = pcall(function() local s = ('x'):rep({}) end) return e",
    "load with a bad chunk": "return select(2, pcall(load, {}))",
    "a <close> error inside coroutine.wrap replaces the coroutine's": """
        local f = coroutine.wrap(function()
          local x <close> = setmetatable({}, {__close = function() error('from close', 0) end})
          error('original', 0)
        end)
        return select(2, pcall(f))""",
    "a <close> handler sees the coroutine's error": """
        local seen
        local f = coroutine.wrap(function()
          local x <close> = setmetatable({}, {__close = function(_, e) seen = e end})
          error('original', 0)
        end)
        return select(2, pcall(f)), seen""",
    "string.rep too large for Lua is catchable": "return pcall(string.rep, 'x', 2^40)",
    "string.rep too large with a separator": "return pcall(string.rep, 'xy', 2^31, ',')",
    "string.rep of the largest integer": "return pcall(string.rep, 'x', math.maxinteger)",
    "string.rep too large, called directly": "return pcall(function() local s = ('x'):rep(1e10) end)",
    "string.rep of zero and negative counts": "return string.rep('x', 0), string.rep('x', -5), ('ab'):rep(2, '-')",
    "string.rep with numbers for text": "return string.rep(5, 3), string.rep('a', '3')",
}


def _plain(code: str):
    runtime = lupa.lua54.LuaRuntime(register_eval=False, register_builtins=False)
    return runtime.execute(code)


def _normalised(value):
    if isinstance(value, tuple):
        return [_normalised(v) for v in value]
    if isinstance(value, str):
        return re.sub(r'^(\[string "[^"]*"\]|script):\d+: ', "<chunk>: ", value)
    return value


@pytest.fixture(params=["in_process", "worker"])
def either(request, bridge, isolated_bridge):
    return bridge if request.param == "in_process" else isolated_bridge


@pytest.mark.parametrize("code", CASES.values(), ids=CASES.keys())
def test_the_sandbox_answers_as_plain_lua(either, code):
    expected = _plain(code)
    result = either.run(code)
    assert result.ok, result.error
    answer = result.value if isinstance(result.value, list) else [result.value]
    expected = list(expected) if isinstance(expected, tuple) else [expected]
    assert [_normalised(v) for v in answer] == [_normalised(v) for v in expected]


def test_the_bad_argument_names_what_plain_lua_names(bridge):
    # The wrapped functions used to be named '?': pinned here as text, not only as equal to plain Lua.
    result = bridge.run("return select(2, pcall(string.gsub, 's', 's', setmetatable))")
    assert result.value == "bad argument #1 to 'setmetatable' (table expected, got string)"
    result = bridge.run("setmetatable(1, {})")
    assert result.error.message == "script:1: bad argument #1 to 'setmetatable' (table expected, got number)"


def test_string_rep_that_lua_would_build_past_the_memory_limit_still_ends_the_run(either):
    result = either.run("pcall(string.rep, 'x', 2^30) return 'survived'", limits={"memory": 4 * 1024 * 1024})
    assert result.error.type == "memory"
