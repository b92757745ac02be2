"""Try luabridge without credentials: bridges whose accounts point at the integrations' own simulators.

:func:`demo` is what ``luabridge run --demo`` runs on, and what a newcomer's first Python lines use::

    with luabridge.demo() as bridge:
        print(bridge.run('return lua_list_docs("integrations")').value)

It knows no integration by name: every integration that declares a ``simulator`` factory gets one, started
on a free loopback port, and its ``default`` and ``work`` accounts point at it with the simulator's token.
A simulator lives as long as the bridge: what one ``luabridge run --demo`` creates is gone when the run ends
(a simulator served by ``luabridge simulator`` and named in an accounts file keeps it across runs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from ._bridge import Bridge, _load
from ._errors import UsageError
from ._registry import Account, Integration, Secret, Simulator

DEMO_ALIASES = ("default", "work")


def start_simulator(integration: Integration, *, port: int = 0, faults: str | None = None) -> Simulator:
    """Build the integration's simulator on ``port`` (0: a free one), not yet serving.

    Raises :class:`UsageError` for a fault spec the simulator refuses or a port it cannot bind.
    """
    if integration.simulator is None:
        raise UsageError(f"integration {integration.name!r} has no simulator")
    try:
        return integration.simulator(port=port, faults=faults)
    except ValueError as exc:
        if not faults:
            raise
        raise UsageError(f"--faults: {exc}") from exc  # the simulator's fault grammar names what is wrong
    except OSError as exc:
        raise UsageError(f"cannot serve the {integration.title} simulator on port {port}: "
                         f"{exc.strerror or exc}") from exc


@contextlib.contextmanager
def demo(
    *, integrations: Sequence[str | Integration] | None = None, faults: str | None = None, **options: Any
) -> Iterator[Bridge]:
    """A :class:`Bridge` over the simulators of ``integrations`` (default: every discovered one).

    The simulators serve for as long as the ``with`` block; ``faults`` is given to each of them (their
    grammar, e.g. ``"429:times=2"``); ``options`` are passed on to :class:`Bridge` (``limits``,
    ``isolation``, ...).
    """
    loaded = _load(integrations)
    with contextlib.ExitStack() as stack:
        accounts = {}
        for integration in loaded:
            if integration.simulator is None:
                continue
            simulator = start_simulator(integration, faults=faults).start()
            stack.callback(simulator.stop)
            accounts[integration.name] = {
                alias: Account(integration.name, alias, simulator.url, Secret(simulator.token))
                for alias in DEMO_ALIASES
            }
        # Closed before the simulators stop: a worker's last call still finds its server.
        bridge = stack.enter_context(Bridge(accounts, integrations=loaded, **options))
        yield bridge
