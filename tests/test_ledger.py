"""The effect ledger over real sockets: each call's effect and outcome, and whether a run is retryable;
the run's randomness and clock come from the host, so a run can be repeated."""

from __future__ import annotations

import time

import pytest
from demo import demo_accounts

from integrations.freshchat.simfaults import FaultPlan
from integrations.freshchat.simulator import Simulator
from luabridge import Bridge, Permissions
from luabridge._catalog import Catalog
from luabridge._ledger import Divergence, PendingCall, Replay
from luabridge._limits import Limits
from luabridge._run_host import ScriptHost
from luabridge._sandbox import run_script

CREATE = 'app.integrations.freshchat.create_conversation({user_id = "user-456", initial_message = "hi"})'


@pytest.fixture
def bridge(sim):
    with Bridge(demo_accounts(sim), isolation=False) as bridge:
        yield bridge


def inject(sim: Simulator, faults: str) -> None:
    for rule in FaultPlan.parse(faults).rules:
        sim.faults.add(rule)


def ledger(result) -> list[tuple[str, str, str]]:
    return [(call.function, call.effect, call.outcome) for call in result.calls]


def test_reads_and_a_written_conversation_are_recorded_as_succeeded(bridge, sim):
    result = bridge.run(f"app.integrations.freshchat.list_agents({{}}) {CREATE}")
    assert result.ok, result.report()
    assert ledger(result) == [("freshchat.list_agents", "read", "succeeded"),
                              ("freshchat.create_conversation", "write", "succeeded")]
    assert result.retryable is False and result.to_json()["retryable"] is False
    assert "  freshchat.create_conversation [default]: write, succeeded" in result.report().splitlines()
    assert "Retryable: no" in result.report()


def test_a_run_of_reads_is_retryable_and_its_report_keeps_its_old_lines(bridge):
    result = bridge.run("app.integrations.freshchat.list_agents({}) return 1")
    assert ledger(result) == [("freshchat.list_agents", "read", "succeeded")]
    assert result.retryable is True
    assert result.report().splitlines()[-1] == "Integration calls: 1"


def test_a_write_refused_before_sending_is_not_sent_and_leaves_the_run_retryable(bridge, sim):
    result = bridge.run('pcall(app.integrations.freshchat.create_conversation, {user_id = "user-456"})')
    assert ledger(result) == [("freshchat.create_conversation", "write", "not_sent")]
    assert result.retryable is True and sim.count("POST") == 0


def test_a_write_the_service_refuses_failed(bridge, sim):
    code = 'pcall(app.integrations.freshchat.create_conversation, {user_id = "nobody", initial_message = "x"})'
    result = bridge.run(code)
    assert ledger(result) == [("freshchat.create_conversation", "write", "failed")]
    assert result.calls[0].http_status == 404 and result.retryable is True


def test_a_denied_write_is_denied(sim):
    with Bridge(demo_accounts(sim), isolation=False, permissions=Permissions.read_only()) as bridge:
        result = bridge.run(f"pcall(function() {CREATE} end)")
    assert ledger(result) == [("freshchat.create_conversation", "write", "denied")]
    assert result.retryable is True and sim.count("POST") == 0


def test_a_write_whose_answer_is_lost_has_an_unknown_outcome_and_is_not_retryable(bridge, sim):
    inject(sim, "drop_after_store:method=POST:path=/v2/conversations:times=1")
    result = bridge.run(f"return pcall(function() {CREATE} end)")
    assert ledger(result) == [("freshchat.create_conversation", "write", "unknown")]
    assert result.retryable is False
    assert sim.count("POST", "/v2/conversations") == 1 and len(sim.created) == 1


def test_a_write_cut_off_by_the_time_limit_in_a_worker_is_unknown(sim):
    inject(sim, "drop_after_store:method=POST:path=/v2/conversations:times=1:stall=4")
    with Bridge(demo_accounts(sim)) as bridge:
        result = bridge.run(CREATE, limits={"timeout": 1.5})
    assert result.error.type == "timeout"
    assert ledger(result) == [("freshchat.create_conversation", "write", "unknown")]
    assert result.calls[0].ok is None and result.retryable is False
    assert sim.count("POST", "/v2/conversations") == 1


def _kernel_values(seed: int, clock: float) -> object:
    catalog = Catalog([], {})
    outcome = run_script(
        "return {math.random(1, 10 ^ 9), math.random(), os.time(), os.date('!%Y-%m-%d %H:%M:%S'), "
        "os.time({year = 2020, month = 1, day = 1, hour = 12}) > 0, os.date('!%Y', 0)}",
        host=ScriptHost(catalog), limits=Limits(), deadline=time.monotonic() + 10,
        seed=seed, clock=clock,
    )
    return outcome.value


def test_randomness_and_the_clock_come_from_the_runs_seed_and_start_time():
    first = _kernel_values(7, 1_700_000_000.75)
    assert first == _kernel_values(7, 1_700_000_000.75)
    assert first[2:] == [1_700_000_000, "2023-11-14 22:13:20", True, "1970"]
    assert _kernel_values(8, 1_700_000_000.75)[:2] != first[:2]


@pytest.mark.parametrize("approved, now", [
    ({"count": 1}, {"count": True}),
    ({"count": 1}, {"count": 1.0}),
    ({"flag": False}, {"flag": 0}),
    ({"name": "n"}, {"name": "n", "extra": None}),
])
def test_a_resumed_write_must_repeat_its_arguments_exactly(approved, now):
    # Python says True == 1 == 1.0: the comparison is of canonical JSON, so none of these pass for the other.
    replay = Replay(calls=[], pending=PendingCall("echo.store", "default", approved, None), approve=True)
    with pytest.raises(Divergence):
        replay.next("echo.store", "default", now)
    same = Replay(calls=[], pending=PendingCall("echo.store", "default", approved, None), approve=True)
    assert same.next("echo.store", "default", dict(approved)).arguments == approved
