"""The figures of DESIGN section 10 that time one thing against a baseline (the scale figures are in
``scale.py``). Each function's docstring says exactly what each side does.

Every figure takes ``quick`` (fewer repetitions: a smoke test, not a measurement) and returns a
:class:`~benchmarks.timing.Figure`. Times are wall-clock seconds: per call for call_overhead and convert,
per run for the two startups, per script for end_to_end, per batch of 8 scripts for concurrency.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

from luabridge import Bridge

from .fixtures import (
    AGENT,
    AGENT_ID,
    UNUSED,
    bare_runtime,
    bridge_over,
    checked,
    count_values,
    direct_session,
    in_process_bridge,
    isolated_memory_bridge,
    page_body,
    simulator,
    simulator_process,
)
from .scale import SCALE_FIGURES
from .timing import Figure, Sample, Target, compare, difference, per_call, wall_time

CALLS = 50  # end_to_end and connections
WORKERS = 8  # concurrency: scripts at once, and workers prestarted
LATENCY = 0.05  # concurrency: seconds the simulator waits before each answer
CALL_LOOP = """
local result
for i = 1, {count} do
  result = app.integrations.freshchat.{call}
end
return result ~= nil
"""
GET_AGENT = f'get_agent({{id = "{AGENT_ID}"}})'
LIST_PAGE = "list_conversations({per_page = 100})"


def _loop(call: str, count: int) -> str:
    return CALL_LOOP.format(count=count, call=call)


def _one_call(run: Callable[[str], object], call: str, count: int, number: int) -> Callable[[], float]:
    """A sampler of one call's cost: ``number`` runs of a loop of ``count`` calls, minus as many of none."""
    full, empty = _loop(call, count), _loop(call, 0)
    return difference(per_call(lambda: run(full), number), per_call(lambda: run(empty), number), count)


def _runner(bridge: Bridge, calls: int) -> Callable[[str], object]:
    return lambda code: checked(bridge.run(code, limits={"calls": calls}))


def _checked_calls(count: int) -> str:
    """A script making ``count`` ``get_agent`` calls and checking each answer."""
    return (
        f"for i = 1, {count} do\n"
        f'  assert(app.integrations.freshchat.get_agent({{id = "{AGENT_ID}"}}).id == "{AGENT_ID}")\n'
        f"end\n"
        f"return {count}"
    )


def _call_overhead(name: str, bridge: AbstractContextManager[Bridge], target: Target, quick: bool) -> Figure:
    count, number, repeats = (200, 2, 5) if quick else (2000, 2, 25)
    lua = bare_runtime()
    freshchat = {"get_agent": lambda args: lua.table_from(AGENT, recursive=True)}
    lua.globals().app = lua.table_from({"integrations": {"freshchat": freshchat}}, recursive=True)
    with bridge as ours_bridge:
        ours, baseline = compare(
            _one_call(_runner(ours_bridge, count), GET_AGENT, count, number),
            _one_call(lua.execute, GET_AGENT, count, number),
            repeats=repeats,
        )
    return Figure(name, "s", ours, baseline, target)


def call_overhead(quick: bool) -> Figure:
    """One ``get_agent`` call from Lua, per call, with no HTTP on either side.

    Both sides run the same Lua text, a loop of N calls to
    ``app.integrations.freshchat.get_agent({id = "agent-123"})``, timed as (the script with N calls - the
    same script with 0 calls) / N, so starting the run cancels out. Ours: ``Bridge.run`` in-process, the
    real Freshchat integration with its client swapped for a :class:`~benchmarks.fixtures.MemoryClient`
    that returns a fixed agent dict (the simulator's agent-123). Each call checks its argument table in
    Lua, crosses into Python, validates the arguments, applies the permission policy, logs the call, runs
    the handler, encodes the agent as JSON and decodes it, converts it into Lua tables, and restores the
    memory limit, all under the sandbox's instruction hook. Baseline: a bare ``LuaRuntime`` whose
    ``app.integrations.freshchat.get_agent`` is a plain Python function that ignores its argument and
    returns ``lua.table_from(agent, recursive=True)``: a fresh table of the same data on every call (a
    cached table would skip the conversion every real call must do).
    """
    return _call_overhead("call_overhead", in_process_bridge(), Target(3.0, "<= 3x"), quick)


def call_overhead_isolated(quick: bool) -> Figure:
    """The same loop as call_overhead, run in a worker process: each call crosses from the worker to the
    host (which validates, applies the policy, logs and asks the memory client) and back over the pipes.
    Ours: ``Bridge.run`` with one prestarted worker over :mod:`benchmarks.memory_integration`. Baseline:
    the bare ``LuaRuntime`` loop of call_overhead."""
    return _call_overhead("call_overhead_isolated", isolated_memory_bridge(), Target(12.0, "<= 12x"), quick)


def _end_to_end(name: str, *, isolation: bool, target: Target, quick: bool) -> Figure:
    repeats = 5 if quick else 25
    script = _checked_calls(CALLS)
    with simulator_process() as server, bridge_over(server, isolation=isolation) as bridge:
        session, headers = direct_session(server)
        url = f"{server.url}/agents/{AGENT_ID}"

        def direct() -> None:
            for _ in range(CALLS):
                response = session.get(url, headers=headers, timeout=(5.0, 30.0), allow_redirects=False)
                response.raise_for_status()
                json.loads(response.content)

        with session:
            ours, baseline = compare(
                wall_time(lambda: checked(bridge.run(script))), wall_time(direct), repeats=repeats,
            )
    return Figure(name, "s", ours, baseline, target)


def end_to_end(quick: bool) -> Figure:
    """A script making 50 ``get_agent`` calls to the simulator (in its own process) over loopback.

    Ours: one ``Bridge.run`` of the script with the default isolation: one prestarted worker process,
    already connected (the warm-up run opens its keep-alive connection). Baseline: the same 50
    ``GET /v2/agents/agent-123`` from Python with one ``requests.Session`` sending the client's headers
    (environment proxies off, as in the client), each answer decoded with ``json.loads``.
    """
    return _end_to_end("end_to_end", isolation=True, target=Target(1.15, "<= 1.15x"), quick=quick)


def end_to_end_inprocess(quick: bool) -> Figure:
    """The end_to_end script and baseline, the script run in-process."""
    return _end_to_end("end_to_end_inprocess", isolation=False, target=Target(1.08, "<= 1.08x"), quick=quick)


def _startup(name: str, *, isolation: bool, target: Target, quick: bool) -> Figure:
    number, repeats = (20, 5) if quick else (100, 25)
    with bridge_over(UNUSED, isolation=isolation) as bridge:
        ours, baseline = compare(
            per_call(lambda: checked(bridge.run("return 1")), number),
            per_call(lambda: bare_runtime().execute("return 1"), number),
            repeats=repeats,
        )
    return Figure(name, "s", ours, baseline, target)


def startup_isolated(quick: bool) -> Figure:
    """A warm ``Bridge.run("return 1")`` with the default isolation: a prestarted worker process, the pipe
    round trip included. Baseline: ``lupa.lua54.LuaRuntime()`` and ``execute("return 1")``. The target is
    absolute: a median of at most 0.25 ms."""
    return _startup("startup_isolated", isolation=True, target=Target(0.00025, "<= 0.25 ms", absolute=True),
                    quick=quick)


def startup_inprocess(quick: bool) -> Figure:
    """``Bridge.run("return 1")`` in-process (a fresh sandboxed runtime and its kernel, every run).
    Baseline: ``lupa.lua54.LuaRuntime()`` and ``execute("return 1")``."""
    return _startup("startup_inprocess", isolation=False, target=Target(4.0, "<= 4x"), quick=quick)


def convert(quick: bool) -> Figure:
    """One 100-conversation page from the HTTP body's bytes into the Lua tables a script sees, per page.

    The page is the simulator's answer to ``GET /v2/conversations?items_per_page=100`` (about 1,400
    values, 60 KB). Ours is what a real call does once the bytes have arrived: ``list_conversations``
    through ``Bridge.run`` in-process, whose :class:`~benchmarks.fixtures.MemoryClient` only decodes
    the body as the real client does (the toolkit's ``decode_json``), then the bridge's JSON crossing,
    ``to_lua`` and the kernel's fix-up; timed like call_overhead, so it also carries one call's fixed
    overhead (a few percent). Baseline: what a bare
    lupa host does with the same bytes: ``json.loads`` and lupa's ``table_from(data, recursive=True)``.
    """
    count, number, repeats = (20, 2, 5) if quick else (100, 2, 25)
    body = page_body()
    lua = bare_runtime()
    with in_process_bridge(body) as bridge:
        ours, baseline = compare(
            _one_call(_runner(bridge, count), LIST_PAGE, count, number),
            per_call(lambda: lua.table_from(json.loads(body), recursive=True), count),
            repeats=repeats,
        )
    info = {"values": count_values(json.loads(body)), "body_bytes": len(body)}
    return Figure("convert", "s", ours, baseline, Target(1.2, "<= 1.2x"), info)


def concurrency(quick: bool) -> Figure:
    """Wall time of 8 scripts at once against the simulator (in its own process) answering after 50 ms.

    Each script makes 3 ``get_agent`` calls. Ours: 8 threads each calling ``Bridge.run`` at once, on a
    bridge with 8 prestarted workers. Baseline: the same 8 runs one after another on the same bridge.
    The ideal ratio is 1/8.
    """
    repeats = 2 if quick else 5
    script = _checked_calls(3)
    with simulator_process(faults=f"latency={LATENCY}") as server, \
            bridge_over(server, isolation=True, workers=WORKERS) as bridge, ThreadPoolExecutor(WORKERS) as threads:

        def together() -> None:
            for result in threads.map(lambda _: bridge.run(script), range(WORKERS)):
                checked(result)

        def one_by_one() -> None:
            for _ in range(WORKERS):
                checked(bridge.run(script))

        ours, baseline = compare(wall_time(together), wall_time(one_by_one), repeats=repeats)
    return Figure("concurrency", "s", ours, baseline, Target(1 / 6, "<= 1/6"))


def connections(quick: bool) -> Figure:
    """TCP connections the simulator (in this process, which counts them) accepted while a fresh bridge
    with one prestarted worker ran one script of 50 calls. Baseline: 1, what one keep-alive connection
    gives. Counted, not timed: ``quick`` changes nothing."""
    with simulator() as sim, bridge_over(sim, isolation=True) as bridge:
        sim.reset_counters()
        checked(bridge.run(_checked_calls(CALLS)))
        opened = sim.connections_opened
    target = Target(1, "== 1", exact=True)
    return Figure("connections", "connections", Sample.exactly(opened), Sample.exactly(1), target)


# In the order of the table.
FIGURES: dict[str, Callable[[bool], Figure]] = {
    "call_overhead": call_overhead,
    "call_overhead_isolated": call_overhead_isolated,
    "end_to_end": end_to_end,
    "end_to_end_inprocess": end_to_end_inprocess,
    "startup_isolated": startup_isolated,
    "startup_inprocess": startup_inprocess,
    "convert": convert,
    "concurrency": concurrency,
    **SCALE_FIGURES,
    "connections": connections,
}
