"""The generic bridge knows no integration by name: a second integration is only a new folder."""

from __future__ import annotations

from pathlib import Path

import luabridge


def test_the_bridge_never_mentions_an_integration():
    package = Path(luabridge.__file__).parent
    for source in sorted(package.glob("*.py")) + sorted(package.glob("*.lua")):
        assert "freshchat" not in source.read_text(encoding="utf-8").lower(), source.name
