"""Run every ``lua_tests/*.lua`` and ``examples/*.lua`` against the Freshchat simulator.

Scripts are found by glob, so a new file is picked up without registering it here. A Lua regression test
passes when it runs to the end: it checks itself with Lua's ``assert``. Each one runs twice, through the
two doors a user has:

- the host API: a :class:`Bridge` (worker processes, the production default) whose ``default`` and
  ``work`` accounts point at a :class:`Simulator` this module starts;
- the real command line, ``luabridge run --demo --json FILE``, in a subprocess, as the README shows it.

Examples run through the command line only, exactly as their header comment says to run them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo import DEMO_ALIASES, demo_bridge

from integrations.freshchat.simulator import Simulator
from luabridge import Bridge, RunResult

ROOT = Path(__file__).resolve().parents[1]
LUA_TESTS = sorted((ROOT / "lua_tests").glob("*.lua"))
EXAMPLES = sorted((ROOT / "examples").glob("*.lua"))



def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def luabridge_command() -> list[str]:
    """The ``luabridge`` console script of the Python running the tests, or the module behind it."""
    script = Path(sys.executable).with_name("luabridge")
    return [str(script)] if script.exists() else [sys.executable, "-m", "luabridge._cli"]


def run_cli(*args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    """Run ``luabridge run --demo --json ARGS`` from the repository root; return the process and its JSON."""
    process = subprocess.run(
        [*luabridge_command(), "run", "--demo", "--json", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    try:
        payload = json.loads(process.stdout)
    except ValueError:
        pytest.fail(f"luabridge exited {process.returncode} without a JSON result\n"
                    f"stdout: {process.stdout}\nstderr: {process.stderr}")
    return process, payload


def failure_report(payload: dict) -> str:
    """The run as the text report a user would read, to show why a script failed."""
    return "\n" + RunResult.from_json(payload).report()


@pytest.fixture(scope="module")
def bridge(simulator: Simulator) -> Iterator[Bridge]:
    with demo_bridge(simulator) as bridge:
        yield bridge


def test_scripts_are_found():
    # A moved folder or a broken glob must not turn this module into zero passing tests.
    assert len(LUA_TESTS) >= 5 and len(EXAMPLES) >= 5, (LUA_TESTS, EXAMPLES)


@pytest.mark.parametrize("path", LUA_TESTS, ids=relative)
def test_lua_test_through_the_host_api(bridge: Bridge, path: Path):
    result = bridge.run(path.read_text(encoding="utf-8"))
    assert result.ok, "\n" + result.report()
    assert all(call.ok is not None for call in result.calls), result.calls  # no call left in flight
    assert {call.account for call in result.calls} <= set(DEMO_ALIASES)


@pytest.mark.parametrize("path", LUA_TESTS, ids=relative)
def test_lua_test_through_the_command_line(path: Path):
    process, payload = run_cli(relative(path))
    assert payload["ok"] is True, failure_report(payload)
    assert process.returncode == 0, process.stderr
    assert payload["error"] is None


@pytest.mark.parametrize("path", EXAMPLES, ids=relative)
def test_example_runs_and_reports(path: Path):
    process, payload = run_cli(relative(path))
    assert payload["ok"] is True, failure_report(payload)
    assert process.returncode == 0, process.stderr
    assert payload["output"].strip(), "an example prints a report"
    assert payload["result"] not in (None, {}, []), "an example returns a useful value"
    assert payload["calls"], "an example calls Freshchat"
    assert all(call["ok"] is not None for call in payload["calls"]), payload["calls"]  # none left in flight


@pytest.mark.parametrize("path", EXAMPLES, ids=relative)
def test_example_says_what_it_does_and_how_to_run_it(path: Path):
    head = path.read_text(encoding="utf-8").splitlines()
    assert head[0].startswith("-- "), "an example starts with a comment saying what it does"
    comment = [line for line in head if line.startswith("--")]
    assert f"-- Run: luabridge run --demo {relative(path)}" in comment
