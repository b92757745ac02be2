"""Limits exceeded through the host's own work (decoding, converting, describing errors), in both modes.

Each must end with the right error type, within the time limit plus a second, with the host alive and the
next run clean.
"""

from __future__ import annotations

import logging
import time

import pytest

MiB = 1024 * 1024


@pytest.fixture(params=["in_process", "worker"])
def either(request, bridge, isolated_bridge):
    chosen = bridge if request.param == "in_process" else isolated_bridge
    yield chosen
    assert chosen.run("return 1 + 1").value == 2


def timed(bridge, code, **limits):
    started = time.monotonic()
    result = bridge.run(code, limits=limits or None)
    return result, time.monotonic() - started


@pytest.mark.parametrize("code", [
    # Two million empty arrays in 6 MB of text: decoded, about 400 MB of tables.
    'local s = "[" .. ("[],"):rep(2e6) .. "[]]" local t = json.decode(s) return #t',
    # The same through pcall: a memory limit is not catchable.
    'local s = "[" .. ("{},"):rep(2e6) .. "{}]" local ok = pcall(json.decode, s) return "survived"',
    # Many nulls: each needs a fix-up path beside the value.
    'local s = "[" .. ("null,"):rep(1e6) .. "null]" return #json.decode(s)',
])
def test_a_decode_that_would_pass_the_memory_limit_is_refused_before_it_is_built(either, code):
    result, elapsed = timed(either, code, timeout=10)
    assert result.error is not None and result.error.type == "memory", result.error
    assert "json.decode: the decoded value would take about" in result.error.message
    assert elapsed < 10 + 1


def test_an_answer_too_big_for_the_memory_left_fails_the_call_in_the_log(either):
    code = "local s = ('x'):rep(1024 * 1024) local keep = s .. 'y' return app.integrations.echo.echo({text = s})"
    result = either.run(code, limits={"memory": 2 * MiB + 512 * 1024})
    assert result.error.type == "memory", result.error
    [call] = result.calls
    assert call.ok is False and "would take about" in call.error


def test_an_error_message_is_bounded(either):
    result = either.run('error(("x"):rep(5e6))')
    assert result.error.type == "runtime"
    assert len(result.error.message) < 9000
    assert result.error.message.endswith("more bytes)")


def test_a_script_larger_than_the_memory_limit_is_refused(either):
    result = either.run("return 1 --" + "x" * (2 * MiB), limits={"memory": MiB})
    assert result.error.type == "memory"
    assert "more than the memory limit" in result.error.message


def test_an_error_objects_tostring_cannot_run_forever(either):
    code = "error(setmetatable({}, {__tostring = function() while true do end end}))"
    result, elapsed = timed(either, code, timeout=1)
    assert result.error.type in ("timeout", "instructions")
    assert elapsed < 2


@pytest.mark.parametrize("code", [
    # A memory error inside load's reader function comes back as load's nil, message.
    "local t = {} local ok = load(function() for i = 1, 1e9 do t[i] = i end end) return 'survived'",
    # A memory error replaced by the error a __close handler raises.
    "local ok = pcall(function() local x <close> = setmetatable({}, {__close = function() error('mine') end}) "
    "local t = {} for i = 1, 1e9 do t[i] = {} end end) return 'survived'",
    # The compiler itself running out of memory.
    "local src = 'return {' .. ('1,'):rep(3e6) .. '}' local f, err = load(src) return 'survived'",
])
def test_a_memory_error_cannot_be_caught_and_survived(either, code):
    result = either.run(code, limits={"memory": 4 * MiB, "timeout": 10})
    assert result.error is not None and result.error.type == "memory", result


def test_misused_doc_functions_leave_no_traceback_in_the_log(bridge, caplog):
    with caplog.at_level(logging.DEBUG, logger="luabridge"):
        result = bridge.run('for i = 1, 2000 do pcall(lua_read_doc, "a", "b") end '
                            'return tostring(select(2, pcall(lua_read_doc, "a", "b")))')
    assert result.value == "script:1: lua_read_doc: expected at most one argument, got 2"
    assert not [record for record in caplog.records if record.exc_info]


def test_printing_a_table_nested_too_deep_says_so(either):
    result = either.run("local t = {} for _ = 1, 250 do t = {t} end print(t)")
    assert result.ok, result.error
    assert "<nested too deep>" in result.output



# Replies as the kernel could receive them, and whether the host has restored the allocator's limit by then
# (it does so only for an answer of at most three values that lupa hands over without allocating).
KERNEL_REPLIES = {
    "answer": (("ok", None), False),
    "answer and fix-ups": (("ok", None, None, None), False),
    "text": (("ok", "a page"), True),
    "four numbers": (("ok", 1, 2, 3, 4), True),
    "nils then text": (("ok", None, None, None, None, None, "x"), True),
    "error": (("error", "lookup", "no such page"), True),
}


def test_the_kernel_restores_the_limit_after_every_reply_the_host_did_not_restore_it_for():
    import lupa.lua54 as lua54

    from luabridge._sandbox import KERNEL_CHUNK, KERNEL_PARTS

    runtime = lua54.LuaRuntime(register_eval=False, register_builtins=False, unpack_returned_tuples=True,
                               max_memory=0)
    table = runtime.table()
    events: list[str] = []

    def host(operation, name=None):
        if operation == "part_loaded":  # the doc functions' part, loaded by the first call
            return ("ok", None)
        reply = KERNEL_REPLIES[name][0]
        return reply if reply[1:2] != (None,) else ("ok", table, *reply[2:])

    callbacks = (time.monotonic, lambda text: events.append(text.strip()), lambda: events.append("restored"),
                 host, host)
    compile_script, run, _, _ = runtime.execute(KERNEL_CHUNK, *callbacks, *KERNEL_PARTS, name="=kernel", mode="b")
    names = ", ".join(repr(name) for name in KERNEL_REPLIES)
    chunk, error = compile_script(f"for _, name in ipairs({{{names}}}) do pcall(lua_read_doc, name) print(name) end")
    assert error is None
    status, *_ = run(chunk, 1e12, time.monotonic() + 10, 10, 10**9, 10**8, 10**6, 10**6, 1, 0)
    assert status == "ok"
    restored_before = {}
    for index, event in enumerate(events):
        if event in KERNEL_REPLIES:
            restored_before[event] = index > 0 and events[index - 1] == "restored"
    assert restored_before == {name: expected for name, (_, expected) in KERNEL_REPLIES.items()}
