"""Workers come from a fork server: forked, reported when they die, and all gone when the bridge closes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from echo_integration import echo_accounts

from luabridge import Bridge

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

BUSY = 'return string.rep("a", 100000):find(".-.-.-b")'  # one long C call: only a kill ends it early


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def _gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def bridge():
    with Bridge(echo_accounts(), integrations=["echo_integration"]) as bridge:
        bridge.prestart(2)
        yield bridge


def _busy_worker(bridge, started: threading.Thread):
    deadline = time.monotonic() + 30
    while not bridge._pool._busy:
        assert time.monotonic() < deadline and started.is_alive(), "the run never started"
        time.sleep(0.01)
    (worker,) = bridge._pool._busy
    return worker


def test_workers_are_forked_by_one_fork_server_that_holds_no_run(bridge):
    server = bridge._pool._server
    workers = list(bridge._pool._idle)
    assert len(workers) == 2
    assert {_parent(worker.process.pid) for worker in workers} == {server.process.pid}
    assert all(worker.hardening for worker in workers)  # each hardened itself after the fork
    assert bridge.run("return 1 + 1").value == 2


def test_a_worker_killed_from_outside_is_reported_and_replaced(bridge):
    results = []
    thread = threading.Thread(target=lambda: results.append(bridge.run(BUSY, limits={"timeout": 30})))
    thread.start()
    worker = _busy_worker(bridge, thread)
    os.kill(worker.process.pid, signal.SIGKILL)
    thread.join(30)
    (result,) = results
    assert result.error.type == "runtime"
    assert result.error.message == "the worker process died unexpectedly (exit status -9)"
    assert bridge.run("return 'next'").value == "next"


def test_a_dead_fork_server_is_started_again(bridge):
    old = bridge._pool._server
    os.kill(old.process.pid, signal.SIGKILL)
    assert _gone(old.process.pid)
    bridge.prestart(4)  # two more workers than are idle: they must be forked by a new fork server
    assert bridge._pool._server is not old and bridge._pool._server.alive
    assert len(bridge._pool._idle) == 4
    assert [bridge.run("return 7").value for _ in range(5)] == [7] * 5


def test_closing_the_bridge_ends_every_worker_and_the_fork_server():
    bridge = Bridge(echo_accounts(), integrations=["echo_integration"])
    bridge.prestart(2)
    results = []
    thread = threading.Thread(target=lambda: results.append(bridge.run(BUSY, limits={"timeout": 30})))
    thread.start()
    busy = _busy_worker(bridge, thread)
    pids = [busy.process.pid, *(worker.process.pid for worker in bridge._pool._idle),
            bridge._pool._server.process.pid]
    bridge.close()
    thread.join(30)
    assert all(_gone(pid) for pid in pids)
    assert results and results[0].error is not None
