"""The generic bridge knows no integration by name: a second integration is only a new folder."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import luabridge

ROOT = Path(__file__).resolve().parent.parent


def test_the_bridge_never_mentions_an_integration():
    package = Path(luabridge.__file__).parent
    sources = sorted(package.rglob("*.py")) + sorted(package.rglob("*.lua"))  # the toolkit and simkit too
    assert len(sources) > 30
    for source in sources:
        assert "freshchat" not in source.read_text(encoding="utf-8").lower(), source.relative_to(package)


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


def _private_luabridge_imports(source: Path) -> list[str]:
    """The names of private luabridge modules or objects that ``source`` imports (``luabridge._http``)."""
    found = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), str(source))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "luabridge" and any(part.startswith("_") for part in parts[1:]):
                found.append(module)
    return found


def test_integrations_import_nothing_private_from_luabridge():
    # What an integration outside this repository could not import, a built-in one may not either.
    folders = sorted(path for path in (ROOT / "integrations").iterdir() if (path / "__init__.py").exists())
    assert folders, "no integration folder found"
    private = {
        str(source.relative_to(ROOT)): names
        for folder in folders for source in sorted(folder.rglob("*.py"))
        if (names := _private_luabridge_imports(source))
    }
    assert private == {}


def test_the_wheel_ships_every_integration_folder_without_warnings(tmp_path):
    # Built offline with this environment's setuptools: what `pip install .` would install.
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-index", "--no-build-isolation",
         "--disable-pip-version-check", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=180,
    )
    assert built.returncode == 0, built.stderr
    assert "deprecat" not in (built.stdout + built.stderr).lower()
    [wheel] = tmp_path.glob("luabridge-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        str(path.relative_to(ROOT))
        for pattern in ("integrations/*/**/*.py", "integrations/*/**/*.md", "luabridge/**/*.py", "luabridge/*.lua")
        for path in ROOT.glob(pattern) if "__pycache__" not in path.parts
    } | {f"luabridge_docs/{path.name}" for path in (ROOT / "docs").glob("*.md")}
    assert expected - shipped == set()
