"""Fixtures for tests that talk to the Freshchat simulator over real loopback sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from integrations.freshchat.simulator import Simulator


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """A started simulator (seed 0, no faults) of its own for each test; stopped afterwards.

    Function scope keeps tests independent: created conversations, counters and fault rules never leak
    from one test to the next, and starting one costs a few tens of milliseconds.
    """
    with Simulator(seed=0) as sim:
        yield sim


@pytest.fixture
def session(simulator: Simulator) -> Iterator[requests.Session]:
    """A ``requests.Session`` sending the simulator's token and ``Accept: application/json``."""
    with requests.Session() as http:
        http.headers.update({"Authorization": f"Bearer {simulator.token}", "Accept": "application/json"})
        yield http
