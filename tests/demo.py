"""The accounts ``luabridge run --demo`` configures, for tests that run scripts against a simulator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from integrations.freshchat.simulator import Simulator
from luabridge import Account, Bridge, Secret

DEMO_ALIASES = ("default", "work")


def demo_accounts(simulator: Simulator) -> dict[str, dict[str, Account]]:
    """The ``default`` and ``work`` accounts, both pointing at ``simulator`` with its token."""
    return {"freshchat": {
        alias: Account("freshchat", alias, simulator.url, Secret(simulator.token)) for alias in DEMO_ALIASES
    }}


@contextmanager
def demo_bridge(simulator: Simulator) -> Iterator[Bridge]:
    """A bridge with worker processes (the production default) over the demo accounts, one worker warm."""
    with Bridge(demo_accounts(simulator)) as bridge:
        bridge.prestart(1)
        yield bridge
