"""What a platform pays at scale: memory per worker, many runs at once, and how costs grow.

``worker_rss`` is counted (bytes), not timed. ``concurrency_64`` times 64 runs at once against the ideal.
The ``growth_*`` figures measure one cost at several sizes and report the slope of log(cost) over
log(size): 1.0 is linear, and a slope above 1.1 shows a cost that grows faster than the work.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from luabridge import Bridge

from .fixtures import bridge_over, checked, in_process_bridge, isolated_memory_bridge, page_body, simulator_process
from .timing import Figure, Sample, Target, compare, per_call, wall_time

MiB = 1 << 20
LATENCY = 0.05  # seconds the simulator waits before each answer
CALLS_PER_RUN = 5
FIVE_CALLS = "\n".join(
    ['local n = 0', f'for i = 1, {CALLS_PER_RUN} do',
     '  n = n + #app.integrations.freshchat.get_agent({id = "agent-123"}).id', 'end', 'return n']
)
GET_AGENT = 'app.integrations.freshchat.get_agent({id = "agent-123"})'
LIST_ALL = "return #app.integrations.freshchat.list_conversations({per_page = 100}).conversations"


def unique_memory(pid: int) -> int:
    """The process's unique set size (USS), in bytes: the pages no other process shares."""
    total = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Private_Clean", "Private_Dirty"):
            total += int(value.split()[0]) * 1024
    return total


def _worker_pids(bridge: Bridge) -> list[int]:
    return [worker.process.pid for worker in bridge._pool._idle]


def _bare_lua_process_uss() -> int:
    """USS of a Python process that has only imported lupa and made one ``LuaRuntime``."""
    code = "import sys, lupa.lua54 as l; l.LuaRuntime().execute('return 1'); print(1, flush=True); sys.stdin.read()"
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        process.stdout.readline()
        return unique_memory(process.pid)
    finally:
        process.stdin.close()
        process.wait()
        process.stdout.close()


def worker_rss(quick: bool) -> Figure:
    """USS of one idle warm worker (after a run of 5 calls), the median over the pool's workers.

    Baseline, for information: a bare Python process with lupa and one ``LuaRuntime``. The target is
    absolute: at most 15 MiB. ``per_concurrent_run`` is the pool's total USS after 8 runs at once, per
    run: each run at once needs a worker of its own, so this is what one more concurrent run costs.
    """
    workers = 8
    with isolated_memory_bridge(workers) as bridge, ThreadPoolExecutor(workers) as threads:
        for result in threads.map(lambda _: bridge.run(FIVE_CALLS), range(workers)):
            checked(result)
        sizes = [unique_memory(pid) for pid in _worker_pids(bridge)]
    baseline = _bare_lua_process_uss()
    info = {"per_concurrent_run": int(sum(sizes) / len(sizes)), "workers": len(sizes)}
    return Figure("worker_rss", "bytes", Sample.of([float(size) for size in sizes]), Sample.exactly(baseline),
                  Target(15 * MiB, "<= 15 MiB", absolute=True), info)


def _at_once(bridge: Bridge, threads: ThreadPoolExecutor, runs: int) -> Callable[[], float]:
    def together() -> None:
        for result in threads.map(lambda _: bridge.run(FIVE_CALLS), range(runs)):
            checked(result)

    return wall_time(together)


def concurrency_64(quick: bool) -> Figure:
    """Wall time of 64 scripts of 5 ``get_agent`` calls each, all at once, against the simulator (in its
    own process) answering each call after 50 ms, on a bridge with 64 prestarted workers. Baseline: the
    ideal, 5 x 50 ms (every run in parallel, nothing but the latency)."""
    runs, repeats = (8, 2) if quick else (64, 5)
    with simulator_process(faults=f"latency={LATENCY}") as server, \
            bridge_over(server, isolation=True, workers=runs) as bridge, ThreadPoolExecutor(runs) as threads:
        (ours,) = compare(_at_once(bridge, threads, runs), repeats=repeats)
    ideal = CALLS_PER_RUN * LATENCY
    return Figure("concurrency_64", "s", ours, Sample.exactly(ideal), Target(1.5, "<= 1.5x"), {"runs": runs})


def slope(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of log(cost) over log(size) through ``(size, cost)`` points."""
    xs = [math.log(size) for size, _ in points]
    ys = [math.log(cost) for _, cost in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )


def _growth(name: str, costs: dict[int, Sample]) -> Figure:
    points = [(float(size), sample.median) for size, sample in costs.items()]
    info = {f"at_{size}_s": sample.median for size, sample in costs.items()}
    return Figure(name, "slope", Sample.exactly(slope(points)), Sample.exactly(1.0), Target(1.1, "<= 1.1"), info)


def _page_of(conversations: int, page: dict) -> bytes:
    """The simulator's page, its conversations repeated (with fresh ids) or cut to ``conversations``."""
    source = page["conversations"]
    items = [
        {**source[index % len(source)], "conversation_id": f"c-{index}", "id": f"c-{index}"}
        for index in range(conversations)
    ]
    return json.dumps({**page, "conversations": items}).encode()


def growth_convert(quick: bool) -> Figure:
    """convert (one list_conversations answer into Lua tables, in-process, no HTTP) at 10, 100 and 1,000
    conversations per answer."""
    sizes, repeats = ((10, 100), 3) if quick else ((10, 100, 1000), 9)
    page = json.loads(page_body())
    costs = {}
    for size in sizes:
        body = _page_of(size, page)
        number = max(2, 2000 // size) if not quick else 2
        with in_process_bridge(body) as bridge:
            run = per_call(lambda bridge=bridge: checked(bridge.run(LIST_ALL)), number)
            (costs[size],) = compare(run, repeats=repeats)
    return _growth("growth_convert", costs)


def growth_calls(quick: bool) -> Figure:
    """A run of a script making 1, 10 and 100 ``get_agent`` calls, in a worker over the memory client."""
    sizes, repeats = ((1, 10), 3) if quick else ((1, 10, 100), 9)
    costs = {}
    with isolated_memory_bridge() as bridge:
        for size in sizes:
            script = f"for i = 1, {size} do {GET_AGENT} end return {size}"
            run = per_call(lambda script=script, size=size: checked(bridge.run(script, limits={"calls": size})), 5)
            (costs[size],) = compare(run, repeats=repeats)
    return _growth("growth_calls", costs)


def growth_concurrency(quick: bool) -> Figure:
    """Wall time of 1, 8, 32 and 64 runs at once of the concurrency_64 script (5 calls, 50 ms latency).
    Perfectly parallel runs give a slope of 0; one after another, 1."""
    sizes, repeats = ((1, 4), 2) if quick else ((1, 8, 32, 64), 3)
    costs = {}
    with simulator_process(faults=f"latency={LATENCY}") as server, \
            bridge_over(server, isolation=True, workers=max(sizes)) as bridge, \
            ThreadPoolExecutor(max(sizes)) as threads:
        for size in sizes:
            (costs[size],) = compare(_at_once(bridge, threads, size), repeats=repeats)
    return _growth("growth_concurrency", costs)


SCALE_FIGURES: dict[str, Callable[[bool], Figure]] = {
    "concurrency_64": concurrency_64,
    "worker_rss": worker_rss,
    "growth_convert": growth_convert,
    "growth_calls": growth_calls,
    "growth_concurrency": growth_concurrency,
}
