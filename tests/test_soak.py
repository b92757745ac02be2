"""Thousands of mixed scripts through one bridge: the host's memory does not keep growing."""

from __future__ import annotations

import os

from echo_integration import echo_accounts

from luabridge import Bridge

ORDINARY = [
    "return 1 + 1",
    "local t = {} for i = 1, 200 do t[i] = {n = i, s = tostring(i)} end return #t",
    "print('hello', {a = 1}) return json.encode({x = {1, 2, 3}})",
    "return app.integrations.echo.get_item('item-1')",
    "local ok, err = pcall(app.integrations.echo.get_item, {idd = 1}) return err",
    "return lua_read_doc('integrations.echo')",
    "error('plain failure')",
    "local s = ('x'):rep(1000) return #s:gsub('x', 'yy')",
]
HOSTILE = [
    "while true do end",
    "local t = {} while true do t[#t + 1] = ('x'):rep(100) end",
    "while true do print('spam') end",
    "local function f() return f() + 1 end f()",
    "for _ = 1, 1e9 do coroutine.wrap(function() end)() end",
    "pcall(function() local t = {} while true do t[#t+1] = {} end end)",
]
SMALL = {"timeout": 0.2, "memory": 2 * 1024 * 1024, "output": 4096, "instructions": 2_000_000}


def _rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _batch(bridge: Bridge, count: int) -> dict[str, int]:
    outcomes: dict[str, int] = {}
    for index in range(count):
        if index % 4 == 3:
            result = bridge.run(HOSTILE[(index // 4) % len(HOSTILE)], limits=SMALL)
            assert not result.ok
        else:
            result = bridge.run(ORDINARY[index % len(ORDINARY)])
        key = result.error.type if result.error else "ok"
        outcomes[key] = outcomes.get(key, 0) + 1
    return outcomes


def test_host_memory_stays_flat_over_thousands_of_runs():
    with Bridge(echo_accounts(), integrations=["echo_integration"], isolation=False) as bridge:
        _batch(bridge, 1200)  # warm up: caches, allocator pools
        before = _rss_bytes()
        outcomes = _batch(bridge, 2400)
        after = _rss_bytes()
    assert outcomes["ok"] == 1500  # 1800 ordinary runs, of which one in eight fails on purpose
    assert {kind for kind in outcomes if kind != "ok"} == {"runtime", "memory", "instructions", "output"}
    growth = after - before
    # Measured flat (0.0 MB); a leak of one Lua runtime per run grows it by over 100 MB.
    assert growth < 3 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB over 2400 runs"
