"""The docs' tables that restate the code are checked against the code, so changing one without the other fails.

Four tables are kept as readable markdown and parsed here:

- the error types (``docs/errors.md``) against :data:`luabridge._result.ERROR_TYPES`;
- every limits table (``docs/overview.md``, ``docs/sandbox.md``) against :class:`luabridge.Limits`'
  fields and defaults, and each limit's error type against what a run that passes it reports;
- the globals a script has (``docs/sandbox.md``) against a fresh sandbox and a plain Lua 5.4;
- the exception tree (``docs/errors.md``) against the subclasses of :class:`luabridge.LuabridgeError`.

A failure names the doc to update.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import lupa.lua54
import pytest

import luabridge
from luabridge import DEFAULT_LIMITS, Bridge, Limits
from luabridge._result import ERROR_TYPES

DOCS = Path(__file__).resolve().parents[1] / "docs"
ERRORS, SANDBOX = "errors.md", "sandbox.md"
LIMITS_HEADER = ["limit", "name", "default", "error type"]
UNITS = {"s": 1, "KiB": 1024, "MiB": 1024 * 1024}
_CODE = re.compile(r"`([^`]+)`")


def read(doc: str) -> str:
    return (DOCS / doc).read_text(encoding="utf-8")


def tables(text: str) -> list[list[list[str]]]:
    """The markdown tables of ``text``, each a list of rows of stripped cells, header first (no rule row)."""
    found, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(set(cell) <= set("-: ") for cell in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def section(text: str, heading: str) -> str:
    """The text under ``## heading``, up to the next heading of that level."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def code_spans(cell: str) -> list[str]:
    return _CODE.findall(cell)


# The error types --------------------------------------------------------------------------------------


def error_types_table() -> list[list[str]]:
    [table] = tables(section(read(ERRORS), "Error types"))
    assert table[0] == ["Type", "When", "`pcall` catches it?"]
    return table[1:]


def test_the_error_types_table_lists_every_type_in_order():
    documented = [code_spans(row[0])[0] for row in error_types_table()]
    assert tuple(documented) == ERROR_TYPES, f"update the error types table of docs/{ERRORS}"


def test_the_types_pcall_cannot_catch_are_syntax_and_the_limits():
    uncatchable = {code_spans(row[0])[0] for row in error_types_table() if row[2].startswith("no")}
    limit_types = {row[3] for table in limits_tables().values() for row in table}
    assert uncatchable == {"syntax"} | {code_spans(kind)[0] for kind in limit_types}


# The limits -------------------------------------------------------------------------------------------


def limits_tables() -> dict[str, list[list[str]]]:
    """Every limits table of the docs, by file name, without its header."""
    found = {}
    for path in sorted(DOCS.glob("*.md")):
        for table in tables(path.read_text(encoding="utf-8")):
            if table[0] == LIMITS_HEADER:
                assert path.name not in found, f"docs/{path.name} has two limits tables"
                found[path.name] = table[1:]
    return found


def parse_amount(text: str) -> float:
    """``30 s``, ``200,000,000``, ``32 MiB``: the number the docs write, in the limit's own unit."""
    number, _, unit = text.partition(" ")
    return float(number.replace(",", "")) * UNITS[unit] if unit else float(number.replace(",", ""))


def test_the_limits_tables_are_in_overview_and_sandbox():
    assert set(limits_tables()) == {"overview.md", "sandbox.md"}


@pytest.mark.parametrize("doc", sorted(limits_tables()))
def test_a_limits_table_holds_every_limit_with_its_default(doc):
    rows = limits_tables()[doc]
    names = [code_spans(row[1])[0] for row in rows]
    assert names == [field.name for field in fields(Limits)], f"update the limits table of docs/{doc}"
    for name, row in zip(names, rows, strict=True):
        assert parse_amount(row[2]) == getattr(DEFAULT_LIMITS, name), f"the default of {name} in docs/{doc}"


# A script that passes each limit when run with the override given, from inside a pcall where it can be.
PASSING = {
    "timeout": ({"timeout": 0.2}, "pcall(function() while true do end end)"),
    "instructions": ({"instructions": 100_000}, "pcall(function() while true do end end)"),
    "memory": ({"memory": 4 * 1024 * 1024}, "pcall(function() local t = {} for i = 1, 1e8 do t[i] = i end end)"),
    "output": ({"output": 100}, 'pcall(function() for i = 1, 100 do print("0123456789") end end)'),
    "calls": ({"calls": 2}, "pcall(function() for i = 1, 3 do app.integrations.echo.echo() end end)"),
    "result": ({"result": 100}, 'return string.rep("x", 1000)'),
}


@pytest.mark.parametrize("name", [field.name for field in fields(Limits)])
def test_each_limit_ends_the_run_with_the_documented_error_type(run, name):
    overrides, code = PASSING[name]
    result = run(code + '\nreturn "not stopped"' if code.startswith("pcall") else code, limits=overrides)
    for doc, rows in limits_tables().items():
        [kind] = [code_spans(row[3])[0] for row in rows if code_spans(row[1])[0] == name]
        assert result.error is not None and result.error.type == kind, f"the error type of {name} in docs/{doc}"


# The globals ------------------------------------------------------------------------------------------

LIST_GLOBALS = """
local globals, members = {}, {}
for name, value in pairs(_G) do
  globals[#globals + 1] = name
  if type(value) == "table" and value ~= _G then
    local keys = {}
    for key in pairs(value) do keys[#keys + 1] = key end
    members[name] = keys
  end
end
return {globals = globals, members = members}
"""


def sandbox_globals() -> tuple[set[str], dict[str, set[str]]]:
    with Bridge(integrations=[], isolation=False) as bridge:
        result = bridge.run(LIST_GLOBALS)
    assert result.ok, result.error
    return set(result.value["globals"]), {name: set(keys) for name, keys in result.value["members"].items()}


def plain_lua_globals() -> tuple[set[str], dict[str, set[str]]]:
    runtime = lupa.lua54.LuaRuntime()
    found = runtime.execute(LIST_GLOBALS)
    members = {name: set(keys.values()) for name, keys in found["members"].items()}
    return set(found["globals"].values()), members


def documented_globals() -> tuple[set[str], dict[str, set[str]], dict[str, set[str]], set[str]]:
    """From docs/sandbox.md: the globals, the libraries listed member by member, the libraries listed whole
    with the members they go without, and what the "Not there" paragraph names."""
    text = section(read(SANDBOX), "What a script can use")
    [table] = tables(text)
    assert table[0] == ["global", "what"]
    names, listed, whole = set(), {}, {}
    for row in table[1:]:
        for match in re.finditer(r"`([^`]+)`(?:\s*\(without ([^)]*)\))?", row[0]):
            for token in match[1].split():
                root, dot, member = token.partition(".")
                names.add(root)
                if dot and "<" not in member:  # app.integrations.<name> is a namespace, not a member list
                    listed.setdefault(root, set()).add(member)
                elif not dot:
                    whole[root] = set(code_spans(match[2] or ""))
    # The first sentence of "Not there: ...", less "the rest of `os`" (whose members the table lists).
    sentence = re.search(r"Not there: (.*?)\.\s", text, re.DOTALL)[1]
    return names, listed, whole, set(code_spans(re.sub(r"the rest of `[^`]+`", "", sentence)))


def test_the_globals_table_names_exactly_the_sandboxs_globals():
    actual, _ = sandbox_globals()
    names, _, _, _ = documented_globals()
    assert names == actual, f"update the globals table of docs/{SANDBOX}"


def test_the_libraries_have_exactly_the_documented_members():
    _, actual = sandbox_globals()
    _, standard = plain_lua_globals()
    _, listed, whole, _ = documented_globals()
    for library, members in listed.items():
        assert actual[library] == members, f"docs/{SANDBOX}: {library}"
    for library, without in whole.items():
        if library in standard and library != "_G":
            assert actual[library] == standard[library] - without, f"docs/{SANDBOX}: {library}"


def test_not_there_names_everything_plain_lua_has_and_the_sandbox_has_not():
    actual, actual_members = sandbox_globals()
    standard, standard_members = plain_lua_globals()
    _, listed, _, not_there = documented_globals()
    missing = standard - actual
    for library, members in standard_members.items():
        if library in actual and library not in listed and library != "_G":
            missing |= {f"{library}.{member}" for member in members - actual_members[library]}
    assert not_there == missing, f"update the \"Not there\" paragraph of docs/{SANDBOX}"


# The exception tree -----------------------------------------------------------------------------------


def documented_tree() -> dict[str, tuple[str | None, list[str]]]:
    """From docs/errors.md: each exception's parent and the kinds its line states."""
    text = section(read(ERRORS), "For hosts: the exception tree")
    block = text[text.index("```text\n") + len("```text\n") :]
    block = block[: block.index("```")]
    tree, parents = {}, []
    for line in block.splitlines():
        depth = re.search(r"\w", line).start() // 4
        name = line[depth * 4 :].split()[0]
        kinds = re.findall(r'"(\w+)"', line.rpartition("(kind ")[2]) if "(kind " in line else []
        parents[depth:] = [name]
        tree[name] = (parents[depth - 1] if depth else None, kinds)
    return tree


def code_tree() -> dict[str, str | None]:
    """Each of luabridge's own exception classes and its parent, walking the subclasses of the root."""
    tree: dict[str, str | None] = {"LuabridgeError": None}
    pending = [luabridge.LuabridgeError]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("luabridge"):
                tree[sub.__name__] = cls.__name__
                pending.append(sub)
    return tree


def test_the_exception_tree_is_the_codes():
    documented = {name: parent for name, (parent, _) in documented_tree().items()}
    assert documented == code_tree(), f"update the exception tree of docs/{ERRORS}"


def test_the_exception_tree_names_only_public_classes_with_their_kinds():
    for name, (_, kinds) in documented_tree().items():
        cls = getattr(luabridge, name)  # the docs say they are raised "from `luabridge`"
        assert set(kinds) <= set(ERROR_TYPES), name
        if len(kinds) == 1:
            assert cls.kind == kinds[0], f"the kind of {name} in docs/{ERRORS}"
