"""Approvals end to end, over real sockets: a write pauses its run, a second process approves or rejects
it, and the resumed run replays every earlier call from the record, sending only the approved write, once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from demo import demo_accounts

from integrations.freshchat.simfaults import FaultPlan
from integrations.freshchat.simulator import Simulator
from luabridge import Bridge, Permissions, UsageError
from luabridge._approvals import ApprovalStore
from luabridge._ledger import RunPlan
from luabridge._run_host import RunEvents

SCRIPT = """
local fc = app.integrations.freshchat
local agents = fc.list_agents({})
local note = "ticket " .. math.random(1, 10 ^ 9) .. " at " .. os.date("!%Y-%m-%dT%H:%M:%S")
local ok, made = pcall(fc.create_conversation, {user_id = "user-456", initial_message = note})
local groups = fc.list_groups({})
print(note)
return {agents = #agents.agents, groups = #groups.groups, made = ok and made.conversation_id ~= nil,
        error = not ok and made.type or nil, time = os.time()}
"""
READS = (("GET", "/v2/agents"), ("GET", "/v2/groups"))


@pytest.fixture
def store(tmp_path):
    return tmp_path / "state"


@pytest.fixture
def bridge(sim, store):
    with Bridge(demo_accounts(sim), approvals=ApprovalStore(store / "approvals.sqlite3"),
                permissions=Permissions.approve_writes()) as bridge:
        yield bridge


def luabridge(sim: Simulator, store, *args: str, wait: bool = True):
    """The command line in a second process, with the same accounts and state directory."""
    env = {**os.environ, "FRESHCHAT_URL": sim.url, "FRESHCHAT_TOKEN": sim.token, "LUABRIDGE_STATE": str(store)}
    command = [sys.executable, "-m", "luabridge._cli", *args]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def counts(sim: Simulator) -> dict[str, int]:
    return {path: sim.count(method, path) for method, path in (*READS, ("POST", "/v2/conversations"))}


def paused(bridge: Bridge, sim: Simulator, code: str = SCRIPT):
    result = bridge.run(code)
    assert result.error.type == "approval", result.report()
    assert [(c.function, c.outcome) for c in result.calls] == [
        ("freshchat.list_agents", "succeeded"), ("freshchat.create_conversation", "pending")]
    pending = result.pending
    assert pending["function"] == "freshchat.create_conversation" and pending["account"] == "default"
    assert pending["arguments"]["user_id"] == "user-456"
    assert pending["request"]["method"] == "POST" and pending["request"]["path"] == "/conversations"
    assert result.retryable is True and sim.count("POST") == 0
    return result


def test_an_approval_from_another_process_sends_the_write_once_and_replays_the_reads(bridge, sim, store):
    first = paused(bridge, sim)
    assert f"Pending approval: {first.pending['id']}" in first.report()
    completed = luabridge(sim, store, "approve", first.pending["id"], "--json")
    assert completed.returncode == 0, completed.stderr
    resumed = json.loads(completed.stdout)
    # Every read once (the first run's agents, the resumed run's groups), the write once.
    assert counts(sim) == {"/v2/agents": 1, "/v2/groups": 1, "/v2/conversations": 1}
    assert [(c["function"], c["outcome"]) for c in resumed["calls"]] == [
        ("freshchat.list_agents", "succeeded"), ("freshchat.create_conversation", "succeeded"),
        ("freshchat.list_groups", "succeeded")]
    assert resumed["retryable"] is False and resumed["pending"] is None
    # The same as a run allowed from the start, with the same seed and clock, on a fresh simulator.
    # The stored run holds its seed and clock, and no token.
    stored = ApprovalStore(store / "approvals.sqlite3").get(first.pending["id"])
    assert stored["state"] == "approved" and sim.token not in json.dumps(stored)
    with Simulator(seed=0) as fresh, Bridge(demo_accounts(fresh)) as allowed:
        plan = RunPlan(seed=stored["run"]["seed"], clock=stored["run"]["clock"])
        expected = allowed._execute(SCRIPT, allowed.limits, RunEvents(Permissions(), plan), None, time.monotonic())
    assert resumed["ok"] and resumed["result"] == expected.value and resumed["output"] == expected.output
    assert [c["outcome"] for c in resumed["calls"]] == [c.outcome for c in expected.calls]


def test_a_rejection_is_a_permission_error_the_script_catches_and_nothing_is_written(bridge, sim, store):
    first = paused(bridge, sim)
    completed = luabridge(sim, store, "reject", first.pending["id"], "--json")
    assert completed.returncode == 0, completed.stderr
    resumed = json.loads(completed.stdout)
    assert resumed["result"]["error"] == "permission" and resumed["result"]["made"] is False
    assert [c["outcome"] for c in resumed["calls"]] == ["succeeded", "denied", "succeeded"]
    assert counts(sim) == {"/v2/agents": 1, "/v2/groups": 1, "/v2/conversations": 0}
    assert resumed["retryable"] is True


def test_an_id_is_used_once_a_second_approval_is_refused_and_sends_nothing(bridge, sim, store):
    first = paused(bridge, sim)
    assert bridge.resume(first.pending["id"], approve=True).ok
    again = luabridge(sim, store, "approve", first.pending["id"])
    assert again.returncode == 2
    assert f"approval '{first.pending['id']}' was already approved" in again.stderr
    assert "nothing was sent" in again.stderr
    with pytest.raises(UsageError, match="already approved"):
        bridge.resume(first.pending["id"], approve=False)
    with pytest.raises(UsageError, match="no pending approval 'apr_nope'"):
        bridge.resume("apr_nope", approve=True)
    assert counts(sim) == {"/v2/agents": 1, "/v2/groups": 1, "/v2/conversations": 1}


def test_a_script_that_does_not_repeat_its_calls_is_stopped_and_sends_nothing(bridge, sim, store):
    # os.clock is CPU time: not replayed, so the resumed script asks to write something else.
    code = SCRIPT.replace('os.date("!%Y-%m-%dT%H:%M:%S")', "os.clock()")
    first = paused(bridge, sim, code)
    completed = luabridge(sim, store, "approve", first.pending["id"], "--json")
    resumed = json.loads(completed.stdout)
    assert completed.returncode == 1 and resumed["error"]["type"] == "runtime"
    assert resumed["error"]["message"].startswith(
        "the resumed script did not repeat its recorded calls: the write waiting "
        "for approval was freshchat.create_conversation (account default) with ")
    assert "the run was stopped and nothing was sent" in resumed["error"]["message"]
    assert counts(sim) == {"/v2/agents": 1, "/v2/groups": 0, "/v2/conversations": 0}


def test_a_resumed_script_that_makes_an_extra_call_first_is_stopped(sim, store):
    code = ("for i = 1, CALLS do app.integrations.freshchat.list_agents({}) end\n"
            'return app.integrations.freshchat.create_conversation({user_id = "user-456", initial_message = "x"})')
    with Bridge(demo_accounts(sim), isolation=False, approvals=store / "a.db") as bridge:
        first = bridge.run(code.replace("CALLS", "1"), permissions=Permissions.approve_writes())
        assert first.error.type == "approval"
        # As if the script read something the record cannot replay: it now reads twice before writing.
        with sqlite3.connect(store / "a.db") as db:
            (text,) = db.execute("SELECT run FROM approvals").fetchone()
            db.execute("UPDATE approvals SET run = ?", (text.replace("i = 1, 1 do", "i = 1, 2 do"),))
        resumed = bridge.resume(first.pending["id"], approve=True)
    assert resumed.error.type == "runtime"
    assert "the write waiting for approval was freshchat.create_conversation" in resumed.error.message
    assert "now it is freshchat.list_agents" in resumed.error.message
    assert sim.count("POST") == 0 and sim.count("GET", "/v2/agents") == 1


def test_a_process_killed_during_the_approved_write_leaves_it_unknown_and_never_sends_it_again(bridge, sim, store):
    first = paused(bridge, sim)
    for rule in FaultPlan.parse("drop_after_store:method=POST:path=/v2/conversations:times=1:stall=20").rules:
        sim.faults.add(rule)
    process = luabridge(sim, store, "approve", first.pending["id"], wait=False)
    deadline = time.monotonic() + 30
    while sim.count("POST") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sim.count("POST") == 1
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    again = luabridge(sim, store, "approve", first.pending["id"])
    assert again.returncode == 2
    assert "its resumed run did not finish, so the write's outcome is unknown; it is not sent again" in again.stderr
    assert sim.count("POST") == 1


def test_a_resumed_write_cut_off_by_the_time_limit_is_unknown_and_the_run_not_retryable(sim, store):
    with Bridge(demo_accounts(sim), approvals=store / "a.db", limits={"timeout": 1.5},
                permissions=Permissions.approve_writes()) as bridge:
        first = paused(bridge, sim)
        for rule in FaultPlan.parse("drop_after_store:method=POST:path=/v2/conversations:times=1:stall=4").rules:
            sim.faults.add(rule)
        resumed = bridge.resume(first.pending["id"], approve=True)
    assert resumed.error.type == "timeout"
    assert [c.outcome for c in resumed.calls] == ["succeeded", "unknown"] and resumed.retryable is False
    assert sim.count("POST") == 1
