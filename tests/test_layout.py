"""The generic bridge knows no integration by name: a second integration is only a new folder."""

from __future__ import annotations

from pathlib import Path

import luabridge


def test_the_bridge_never_mentions_an_integration():
    package = Path(luabridge.__file__).parent
    for source in sorted(package.glob("*.py")) + sorted(package.glob("*.lua")):
        assert "freshchat" not in source.read_text(encoding="utf-8").lower(), source.name


def test_a_test_only_integration_plugs_in_through_the_same_door(run):
    # echo_integration lives in tests/: a module with an `integration`, like integrations/freshchat.
    result = run("""
        local item = app.integrations.echo.work.get_item("i-1")
        return item.id, lua_read_doc("integrations.echo"), lua_list_docs("integrations.echo")
    """)
    assert result.ok, result.error
    item_id, reference, pages = result.value
    assert item_id == "i-1"
    assert reference.startswith("# Echo — Lua API Reference")
    assert "integrations.echo.get_item" in pages and "integrations.echo.work" in pages


def test_builtin_and_extra_integrations_side_by_side():
    with luabridge.Bridge(integrations=["integrations.freshchat", "echo_integration"], isolation=False) as bridge:
        pages = bridge.docs.list("integrations")
        assert "integrations.freshchat.get_agent" in pages and "integrations.echo.get_item" in pages
