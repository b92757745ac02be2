"""A worker's real memory stays near the run's limit, whatever a script or a server throws at it.

The Lua allocator's limit bounds what a script builds; these tests measure what the worker process as a
whole reaches (its peak resident set, ``VmHWM``) while a run passes its limit through host work: decodes,
answers that fit and answers that do not, compressed bombs and endless bodies. Each ends with the right
error type within its time limit plus a second. Linux only (``/proc``), as the worker's hardening is.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from integrations.freshchat.simulator import Simulator
from luabridge import Account, Bridge, Secret

MiB = 1 << 20
LIMIT = 16 * MiB
TIMEOUT = 10
LIST = "return #app.integrations.freshchat.list_agents()"

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")


def peak_and_now(pid: int) -> tuple[int, int]:
    """The process's peak and current resident set, in bytes."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmHWM"].split()[0]) * 1024, int(fields["VmRSS"].split()[0]) * 1024


# (faults, script, error type, how far past its resident set before the run the worker may peak)
CASES = {
    "Lua strings up to the limit": (
        None, "local t = {} for i = 1, 1e6 do t[i] = ('x'):rep(1000) .. i end", "memory", 1.5 * LIMIT),
    "a decode refused before it is built": (
        None, 'local s = "[" .. ("[],"):rep(2e6) .. "[]]" return #json.decode(s)', "memory", 2 * LIMIT),
    "an answer announced larger than the limit": ("huge=64M", LIST, "memory", LIMIT / 4),
    "a gzip bomb": ("gzip_bomb=400M", LIST, "memory", LIMIT / 4),
    "an endless body": ("endless", LIST, "memory", LIMIT / 4),
    "answers kept until the limit": (
        "huge=4M", "local k = {} for i = 1, 10 do k[i] = app.integrations.freshchat.list_agents() end",
        "memory", 3 * LIMIT),
    # A single 15 MB string is the worst case for the worker: it exists as the answer's bytes, as Python
    # text while it is converted, and as the Lua string the script keeps (the only copy the limit counts).
    "one answer just under the limit": ("huge=15M", LIST, None, 3 * LIMIT),
}


@pytest.mark.parametrize("case", CASES)
def test_the_worker_peaks_near_the_limit(case):
    faults, code, error_type, allowed = CASES[case]
    with Simulator(seed=0, faults=faults) as sim:
        account = Account("freshchat", "default", sim.url, Secret(sim.token))
        with Bridge({"freshchat": {"default": account}}, integrations=["integrations.freshchat"]) as bridge:
            bridge.prestart(1)
            (worker,) = bridge._pool._idle
            _, before = peak_and_now(worker.process.pid)
            started = time.monotonic()
            result = bridge.run(code, limits={"memory": LIMIT, "timeout": TIMEOUT})
            elapsed = time.monotonic() - started
            peak, _ = peak_and_now(worker.process.pid)  # the worker survived: it is idle again
            assert bridge.run("return 1 + 1").value == 2
    assert (result.error.type if result.error else None) == error_type, result.error
    assert elapsed < TIMEOUT + 1
    assert peak - before <= allowed, f"the worker peaked {(peak - before) / MiB:.1f} MiB past its start"
