"""Fixtures shared by the suite: bridges over the test-only echo integration, in-process and isolated."""

from __future__ import annotations

import pytest
from echo_integration import echo_accounts

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


@pytest.fixture
def run(bridge):
    """Run a script in-process and return its result."""
    return bridge.run
