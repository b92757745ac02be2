"""Dry runs over real sockets: reads are sent, each write is checked and answered with its exact request."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from demo import demo_accounts

from integrations.freshchat.simulator import Simulator
from luabridge import Bridge, Permissions

SCRIPT = """
local agents = app.integrations.freshchat.list_agents({})
local made = app.integrations.freshchat.create_conversation({
  user_id = "user-456", initial_message = "hello", channel_id = "channel-789"})
return {agents = #agents.agents > 0, made = made}
"""
REQUEST = {
    "method": "POST", "path": "/conversations",
    "body": {
        "users": [{"id": "user-456"}], "channel_id": "channel-789",
        "messages": [{"message_parts": [{"text": {"content": "hello"}}], "message_type": "normal",
                      "actor_type": "user", "actor_id": "user-456", "channel_id": "channel-789"}],
    },
}


@pytest.fixture(scope="module")
def sim():
    with Simulator(seed=0) as sim:
        yield sim


@pytest.mark.parametrize("isolation", [False, True], ids=["in-process", "worker"])
def test_a_dry_run_sends_reads_and_answers_writes_with_their_request(sim, isolation):
    sim.reset_counters()
    with Bridge(demo_accounts(sim), isolation=isolation) as bridge:
        result = bridge.run(SCRIPT, dry_run=True)
    assert result.ok, result.report()
    assert result.value == {"agents": True, "made": {"dry_run": True, "request": REQUEST}}
    assert [(c.function, c.effect, c.outcome) for c in result.calls] == [
        ("freshchat.list_agents", "read", "succeeded"), ("freshchat.create_conversation", "write", "dry_run")]
    assert sim.count("GET", "/v2/agents") == 1 and sim.count("POST") == 0
    assert result.retryable is True


def test_a_dry_run_still_validates_and_applies_the_permission_policy(sim):
    sim.reset_counters()
    with Bridge(demo_accounts(sim), isolation=False) as bridge:
        invalid = bridge.run('app.integrations.freshchat.create_conversation({user_id = "user-456"})', dry_run=True)
        denied = bridge.run(SCRIPT, dry_run=True, permissions=Permissions.read_only())
    assert invalid.error.type == "validation" and invalid.calls[0].outcome == "not_sent"
    assert denied.error.type == "permission" and denied.calls[-1].outcome == "denied"
    assert sim.count("POST") == 0


def test_a_dry_run_does_not_pause_a_write_that_needs_approval(sim, tmp_path):
    with Bridge(demo_accounts(sim), isolation=False, approvals=tmp_path / "a.db") as bridge:
        result = bridge.run(SCRIPT, dry_run=True, permissions=Permissions.approve_writes())
    assert result.ok and result.pending is None and result.calls[-1].outcome == "dry_run"


def test_the_command_line_dry_run_prints_the_request(sim):
    sim.reset_counters()
    env = {**os.environ, "FRESHCHAT_URL": sim.url, "FRESHCHAT_TOKEN": sim.token}
    completed = subprocess.run([sys.executable, "-m", "luabridge._cli", "run", "--dry-run", "--json", "-e", SCRIPT],
                               capture_output=True, text=True, timeout=60, env=env)
    assert completed.returncode == 0, completed.stderr
    data = json.loads(completed.stdout)
    assert data["result"]["made"] == {"dry_run": True, "request": REQUEST}
    assert [call["outcome"] for call in data["calls"]] == ["succeeded", "dry_run"]
    assert sim.count("POST") == 0
