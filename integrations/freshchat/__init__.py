"""Freshchat REST API v2 as ``app.integrations.freshchat``: seven functions (six read, one write).

Registered through the same door as any third-party integration: this module's ``integration``.
"""

from __future__ import annotations

from pathlib import Path

from luabridge import Integration

from .accounts import SCHEME
from .client import connect
from .spec import FUNCTIONS


def _simulator(*, port: int = 0, faults: str | None = None):
    from .simulator import Simulator  # only demos and tests need the server

    return Simulator(port=port, faults=faults)


def _guides() -> dict[str, str]:
    """The pages of ``guides/``, served as ``integrations.freshchat.<stem>``."""
    folder = Path(__file__).with_name("guides")
    return {path.stem: path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.md"))}


integration = Integration(
    name="freshchat",
    title="Freshchat",
    functions=FUNCTIONS,
    reference=Path(__file__).with_name("reference.md").read_text(encoding="utf-8"),
    accounts=SCHEME,
    connect=connect,
    guides=_guides(),
    simulator=_simulator,
)
