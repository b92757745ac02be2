"""Every ```lua block of the docs runs as a test.

The bridge's own guides (``docs/**/*.md``) speak of integrations in general, so their blocks run in a bridge
without any integration. Freshchat's pages (its reference ``integrations/freshchat/reference.md``, its
guides ``integrations/freshchat/guides/*.md``), ``README.md`` when it has any, and the blocks of the
generated pages ``lua_read_doc`` serves that are not copies of a file's block run against the Freshchat
simulator. Two rules skip a block, and only these two:

- its info string is ``lua norun`` (a block with placeholders such as ``<name>``, one that needs what the
  simulator has not got, or one that must fail);
- it contains ``function_name(``: the reference's multi-account placeholders. The reference must stay
  byte for byte the seed's text, so it cannot be annotated; the rule is pinned to that one block below.

Every other block runs unmodified, with the reference's ids (``abc-123-def``, ``agent-123``, ``user-456``,
``channel-789``) that the simulator always serves, and must succeed. Test ids are ``<file>:<line>``, the
line of the block's opening fence.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from demo import DEMO_ALIASES, demo_bridge

from integrations.freshchat.simulator import Simulator
from luabridge import Account, Bridge, Secret

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = "integrations/freshchat/reference.md"
FRESHCHAT_GUIDES = "integrations/freshchat/guides"
GENERIC = "docs/"  # the sources whose blocks run without any integration
PLACEHOLDER = "function_name("
NORUN = "norun"


# How many blocks each source skips, and why. A new skipped block must be added here on purpose, so a
# runnable block cannot be skipped silently (by a stray "norun" or a placeholder-looking line).
EXPECTED_SKIPS = {
    "docs/errors.md": {"lua norun": 2},
    "docs/overview.md": {"lua norun": 1},
    "docs/sandbox.md": {"lua norun": 1},
    f"{FRESHCHAT_GUIDES}/examples.md": {"lua norun": 1},
    REFERENCE: {"placeholder": 1},
}

_OPENING = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its info string and its code."""

    source: str
    line: int
    info: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.source}:{self.line}"

    @property
    def is_lua(self) -> bool:
        words = self.info.split()
        return bool(words) and words[0].lower() == "lua"

    @property
    def skip(self) -> str | None:
        """Why the block does not run (``"lua norun"`` or ``"placeholder"``), or ``None`` when it runs."""
        if NORUN in self.info.split()[1:]:
            return self.info
        if PLACEHOLDER in self.code:
            return "placeholder"
        return None


def fenced_blocks(source: str, text: str) -> Iterator[Block]:
    """The fenced code blocks of a markdown text, as CommonMark reads them (``` or ~~~, 0-3 spaces in)."""
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        opening = _OPENING.match(lines[index])
        if not opening or (opening["fence"][0] == "`" and "`" in opening["info"]):
            index += 1
            continue
        fence = opening["fence"]
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        code = "\n".join(lines[index + 1:end])
        yield Block(source, index + 1, opening["info"].strip(), code + "\n" if code else "")
        index = end + 1


def doc_files() -> list[Path]:
    files = sorted((ROOT / "docs").glob("**/*.md")) + [ROOT / REFERENCE]
    files += sorted((ROOT / FRESHCHAT_GUIDES).glob("*.md"))
    readme = ROOT / "README.md"
    return files + [readme] if readme.exists() else files


def file_blocks() -> list[Block]:
    return [
        block
        for path in doc_files()
        for block in fenced_blocks(path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8"))
    ]


def served_blocks(known: set[str]) -> list[Block]:
    """The lua blocks of the pages lua_read_doc serves (generated ones included) not already in a file,
    with the markers of their source (``DocSet.source``)."""
    accounts = {"freshchat": {
        alias: Account("freshchat", alias, "http://127.0.0.1:9/v2", Secret("unused")) for alias in DEMO_ALIASES
    }}
    with Bridge(accounts, isolation=False) as bridge:
        # The pages as written: served, a block has lost its test marker (lua norun is served as lua).
        pages = {name: bridge.docs.source(name) for name in bridge.docs.list()}
    return [
        block
        for name, text in pages.items()
        for block in fenced_blocks(f"lua_read_doc:{name}", text)
        if block.is_lua and block.code not in known
    ]


FILE_BLOCKS = file_blocks()
LUA_BLOCKS = [block for block in FILE_BLOCKS if block.is_lua]
SERVED_BLOCKS = served_blocks({block.code for block in LUA_BLOCKS})
RUNNABLE = [block for block in LUA_BLOCKS + SERVED_BLOCKS if block.skip is None]


@pytest.fixture(scope="module")
def freshchat_bridge(simulator: Simulator) -> Iterator[Bridge]:
    with demo_bridge(simulator) as bridge:
        yield bridge


@pytest.fixture(scope="module")
def bare_bridge() -> Iterator[Bridge]:
    """A bridge with worker processes and no integration at all: what the generic guides must work in."""
    with Bridge(integrations=[]) as bridge:
        bridge.prestart(1)
        yield bridge


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.id for block in RUNNABLE])
def test_block_runs(request: pytest.FixtureRequest, block: Block):
    generic = block.source.startswith(GENERIC)
    bridge = request.getfixturevalue("bare_bridge" if generic else "freshchat_bridge")
    result = bridge.run(block.code)
    assert result.ok, f"\n{block.code}\n{result.report()}"


def test_every_guide_has_runnable_blocks():
    # A guide file whose blocks all stopped running (or were never collected) would pass silently.
    guides = sorted((ROOT / "docs").glob("*.md")) + sorted((ROOT / FRESHCHAT_GUIDES).glob("*.md"))
    sources = {path.relative_to(ROOT).as_posix() for path in guides}
    assert f"{FRESHCHAT_GUIDES}/accounts.md" in sources
    assert sources <= {block.source for block in RUNNABLE}


def test_the_skip_rule_skips_exactly_the_intended_blocks():
    skipped = Counter((block.source, block.skip) for block in LUA_BLOCKS + SERVED_BLOCKS
                      if block.skip is not None and not block.source.startswith("lua_read_doc:"))
    found = {source: {} for source, _ in skipped}
    for (source, reason), count in skipped.items():
        found[source][reason] = count
    assert found == EXPECTED_SKIPS, (
        "the blocks that do not run changed; if that is intended, update EXPECTED_SKIPS in this file"
    )


def test_the_placeholder_rule_matches_only_the_references_multi_account_block():
    matched = [block for block in LUA_BLOCKS if PLACEHOLDER in block.code]
    assert [block.source for block in matched] == [REFERENCE]
    assert matched[0].code.startswith("-- Default account (always works)\napp.integrations.freshchat.function_name")


def test_every_lua_block_is_plainly_runnable_or_plainly_not():
    # A typo in the info string ("Lua", "lua no-run", "lua  norun extra") must not leave a block in between.
    infos = Counter(block.info for block in LUA_BLOCKS + SERVED_BLOCKS)
    assert set(infos) <= {"lua", "lua norun"}, infos
    near_misses = [block.id for block in FILE_BLOCKS
                   if not block.is_lua and block.info.lower().lstrip("{.").startswith("lua")]
    assert near_misses == []


def test_the_references_examples_all_run():
    reference = [block for block in LUA_BLOCKS if block.source == REFERENCE]
    assert len(reference) == 9  # one per function, two for list_conversations, and the placeholders
    assert len([block for block in reference if block in RUNNABLE]) == 8
    # The ids the seed's examples use, which the simulator always serves.
    code = "".join(block.code for block in reference)
    for fixture_id in ("abc-123-def", "agent-123", "user-456", "channel-789"):
        assert f'"{fixture_id}"' in code


def test_generated_pages_skip_only_lists_of_call_forms():
    # The generated pages' own blocks that do not run may only list call forms, never example code.
    skipped = [block for block in SERVED_BLOCKS if block.skip is not None]
    assert skipped, "no generated page was parsed"
    for block in skipped:
        calls = [line for line in block.code.splitlines() if line.strip()]
        assert all(line.startswith("app.integrations.") for line in calls), block.id


def test_the_fence_parser():
    text = "\n".join([
        "intro", "```lua", "print(1)", "```", "", "    ```lua", "indented code, not a fence", "    ```",
        "~~~~lua norun", "```", "still inside", "~~~~", "```", "unclosed",
    ])
    blocks = [(block.line, block.info, block.code) for block in fenced_blocks("t.md", text)]
    assert blocks == [(2, "lua", "print(1)\n"), (9, "lua norun", "```\nstill inside\n"), (13, "", "unclosed\n")]
