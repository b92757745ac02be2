"""Fixtures shared by the suite: bridges over the test-only echo integration, in-process and isolated."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from echo_integration import echo_accounts

from integrations.freshchat.simulator import Simulator
from luabridge import Bridge


@pytest.fixture
def bridge():
    """An in-process bridge over the echo integration."""
    with Bridge(echo_accounts(), integrations=["echo_integration"], isolation=False) as bridge:
        yield bridge


@pytest.fixture(scope="session")
def isolated_bridge():
    """A bridge over the echo integration that runs scripts in worker processes (shared: workers are slow to start)."""
    with Bridge(echo_accounts(), integrations=["echo_integration"]) as bridge:
        yield bridge


@pytest.fixture(params=["in_process", "worker"])
def either(request, bridge, isolated_bridge):
    """The in-process bridge, then the isolated one: for what must hold in both."""
    return bridge if request.param == "in_process" else isolated_bridge


@pytest.fixture
def run(bridge):
    """Run a script in-process and return its result."""
    return bridge.run


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A fresh Freshchat simulator for one test: nothing created yet, every count at zero (modules that
    share one across their tests define their own ``sim``)."""
    with Simulator(seed=0) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    """A Freshchat simulator shared by one test module (tests/freshchat has its own, per test)."""
    with Simulator(seed=0) as sim:
        yield sim
