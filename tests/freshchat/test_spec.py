"""The Freshchat spec against its sources: the reference markdown (served byte for byte) and the metadata.

The reference's tables, summaries and examples are parsed here and compared with ``spec.FUNCTIONS`` and
with the pages generated from it, so the spec, the generated docs and the reference cannot drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from integrations.freshchat import spec
from luabridge._docs import DocSet
from luabridge._errors import ArgumentError
from luabridge._registry import AccountScheme, Integration
from luabridge._validation import ArgumentValidator

REFERENCE_PATH = Path(spec.__file__).with_name("reference.md")
REFERENCE = REFERENCE_PATH.read_bytes().decode("utf-8")
# A copy of the source document the reference comes from: the byte-for-byte tests compare against it.
SEED = Path(__file__).with_name("seed_reference.txt")

FIRST_LINE = "# Freshchat — Lua API Reference\n"
LAST_LINE = "All functions are identical across accounts — only the credentials differ.\n"
ROW = re.compile(r"^\| `(\w+)` \| (\w+) \| (yes|no) \| (.*) \|$", re.M)
LUA_BLOCK = re.compile(r"^```lua\n(.*?)\n```$", re.M | re.S)
# From the metadata's "Operation" entries: only create_conversation writes.
OPERATIONS = {
    "list_conversations": "read", "get_conversation": "read", "create_conversation": "write",
    "list_agents": "read", "get_agent": "read", "list_groups": "read", "get_current_user": "read",
}


def sections(markdown: str) -> dict[str, str]:
    """The reference's function sections by name (the text after each ``## name`` heading)."""
    parts = re.split(r"^## ", markdown, flags=re.M)[1:]
    named = {part.split("\n", 1)[0]: part.split("\n", 1)[1] for part in parts}
    return {name: text for name, text in named.items() if re.fullmatch(r"\w+", name)}


def table(markdown: str) -> list[tuple[str, str, bool, str]]:
    """The parameter rows of a markdown section: name, type, required, description."""
    return [(name, kind, flag == "yes", text) for name, kind, flag, text in ROW.findall(markdown)]


def seed_block() -> bytes:
    """The seed's raw agent markdown: its lines from the title through the closing sentence, each with its
    newline. So the block, and reference.md, end with exactly one newline (the last line's own)."""
    data = SEED.read_bytes()
    start = data.index(b"\nRaw agent markdown\n") + len(b"\nRaw agent markdown\n")
    end = data.index(LAST_LINE.encode(), start) + len(LAST_LINE.encode())
    return data[start:end]


def seed_metadata() -> dict[str, dict]:
    """The seed's "Functions" metadata by short name: description, operation and parameter rows."""
    text = SEED.read_text(encoding="utf-8").split("\nFunctions\n", 1)[1]
    entries = re.findall(
        r"^freshchat_(\w+)\n\n(.+?)\n\nOperation\n\w+ (\w+)\nFull name\nfreshchat\.freshchat_\1\n"
        r"ParameterTypeRequiredDescription\n(.*?)(?=\n\nfreshchat_|\Z)", text, re.M | re.S)
    return {
        name: {
            "description": description,
            "operation": operation,
            "rows": [row.split(" ", 3) for row in rows.splitlines() if row.strip() != "No parameters."],
        }
        for name, description, operation, rows in entries
    }


SECTIONS = sections(REFERENCE)
BY_NAME = {fn.name: fn for fn in spec.FUNCTIONS}
FRESHCHAT = Integration(
    name="freshchat", title="Freshchat", functions=spec.FUNCTIONS, reference=REFERENCE,
    accounts=AccountScheme("FRESHCHAT", "https://api.freshchat.com/v2", lambda url: url),
    connect=lambda account: None,
)
DOCS = DocSet([FRESHCHAT], {"freshchat": ["default", "work"]}, guides={})


def test_reference_md_is_the_seed_raw_markdown_byte_for_byte():
    assert REFERENCE_PATH.read_bytes() == seed_block()


def test_reference_md_starts_with_the_title_and_ends_with_one_newline():
    assert REFERENCE.startswith(FIRST_LINE)
    assert REFERENCE.endswith(LAST_LINE) and not REFERENCE.endswith("\n" + LAST_LINE + "\n")
    assert "\r" not in REFERENCE


def test_integration_page_serves_the_reference_exactly():
    assert DOCS.read("integrations.freshchat") == REFERENCE


def test_functions_are_the_reference_sections_in_order():
    assert [fn.name for fn in spec.FUNCTIONS] == list(SECTIONS) == list(OPERATIONS)


@pytest.mark.parametrize("fn", spec.FUNCTIONS, ids=lambda fn: fn.name)
def test_spec_matches_the_reference_section(fn):
    section = SECTIONS[fn.name]
    assert fn.summary == section.strip().split("\n", 1)[0]
    schema = fn.parameters
    rows = [(name, prop["type"], name in schema["required"], prop["description"])
            for name, prop in schema["properties"].items()]
    assert rows == table(section)
    if not rows:
        assert "### Parameters\n\nNone.\n" in section
    assert list(fn.examples) == LUA_BLOCK.findall(section)


@pytest.mark.parametrize("fn", spec.FUNCTIONS, ids=lambda fn: fn.name)
def test_every_function_is_complete(fn):
    assert fn.operation == OPERATIONS[fn.name]
    assert fn.description and fn.description != fn.summary
    assert fn.parameters["type"] == "object" and fn.parameters["additionalProperties"] is False
    ArgumentValidator(f"freshchat.{fn.name}", fn.parameters)  # a valid draft 2020-12 schema
    assert fn.examples
    for example in fn.examples:
        assert f"app.integrations.freshchat.{fn.name}(" in example
    assert FRESHCHAT.function(f"freshchat_{fn.name}") is fn


@pytest.mark.parametrize("name", ["list_conversations", "list_agents", "list_groups"])
def test_list_functions_page_from_1_and_take_at_most_100_per_page(name):
    properties = BY_NAME[name].parameters["properties"]
    assert {k: properties["page"][k] for k in ("type", "default", "minimum")} == {
        "type": "integer", "default": 1, "minimum": 1}
    assert {k: properties["per_page"][k] for k in ("type", "default", "minimum", "maximum")} == {
        "type": "integer", "default": 50, "minimum": 1, "maximum": 100}


def test_status_choices_are_the_reference_ones():
    status = BY_NAME["list_conversations"].parameters["properties"]["status"]
    assert status["enum"] == re.findall(r'`"(\w+)"`', status["description"])


@pytest.mark.parametrize("fn", spec.FUNCTIONS, ids=lambda fn: fn.name)
def test_spec_matches_the_seed_metadata(fn):
    entry = seed_metadata()[fn.name]
    assert fn.description == entry["description"]
    assert fn.operation == entry["operation"]
    schema = fn.parameters
    assert [row[:3] for row in entry["rows"]] == [
        [name, prop["type"], "yes" if name in schema["required"] else "no"]
        for name, prop in schema["properties"].items()
    ]
    for name, _, _, description in entry["rows"]:
        if "max: 100" in description:
            assert schema["properties"][name]["maximum"] == 100


@pytest.mark.parametrize("fn", spec.FUNCTIONS, ids=lambda fn: fn.name)
def test_generated_page_agrees_with_the_reference(fn):
    page = DOCS.read(f"integrations.freshchat.{fn.name}")
    assert DOCS.read(f"integrations.freshchat.freshchat_{fn.name}") == page
    assert DOCS.read(f"app.integrations.freshchat.{fn.name}") == page
    assert page.startswith(f"# freshchat.{fn.name}\n\n{fn.summary}\n\n{fn.description}\n")
    reference_rows = table(SECTIONS[fn.name])
    page_rows = table(page.partition("\n## Result\n")[0])
    assert [row[:3] for row in page_rows] == [row[:3] for row in reference_rows]
    for (_, _, _, described), (_, _, _, reference) in zip(page_rows, reference_rows, strict=True):
        assert described.startswith(reference)
    # The page as written: served, its call forms' block loses the "norun" that sets it apart.
    assert LUA_BLOCK.findall(DOCS.source(f"integrations.freshchat.{fn.name}")) == LUA_BLOCK.findall(
        SECTIONS[fn.name])
    assert f"Operation: {fn.operation} (" in page
    assert f"app.integrations.freshchat.work.{fn.name}(" in page


def test_per_page_bound_is_shown_on_every_list_page():
    for name in ("list_conversations", "list_agents", "list_groups"):
        assert "From 1 to 100." in DOCS.read(f"integrations.freshchat.{name}")


class RecordingClient:
    """Stands in for the Freshchat client: records which method a handler called, and with what."""

    def __getattr__(self, method):
        return lambda args, ctx: (method, args, ctx)


@pytest.mark.parametrize("fn", spec.FUNCTIONS, ids=lambda fn: fn.name)
def test_handler_calls_the_client_method_of_the_same_name(fn):
    args, ctx = {"page": 1}, object()
    assert fn.handler(RecordingClient(), args, ctx) == (fn.name, args, ctx)


@pytest.mark.parametrize(("name", "raw", "message"), [
    ("list_conversations", {"status": "opne"},
     "freshchat.list_conversations: parameter 'status' must be one of "
     '"new", "open", "pending", "resolved", "closed"; got a string "opne". Did you mean "open"?'),
    ("list_agents", {"per_page": 500},
     "freshchat.list_agents: parameter 'per_page' must be at most 100, got 500"),
    ("list_agents", "x", "freshchat.list_agents expects one table of named parameters, like "
     'freshchat.list_agents({page = 1}); got a string "x"'),
    ("create_conversation", {"user_id": "user-456"}, "freshchat.create_conversation: missing required "
     "parameter 'initial_message' (a string: First message in the conversation)"),
])
def test_freshchat_argument_messages(name, raw, message):
    with pytest.raises(ArgumentError) as caught:
        ArgumentValidator(f"freshchat.{name}", BY_NAME[name].parameters).bind(raw)
    assert caught.value.message == message


def test_a_lone_id_is_the_first_required_parameter():
    validator = ArgumentValidator("freshchat.get_agent", BY_NAME["get_agent"].parameters)
    assert validator.bind("agent-123") == validator.bind({"id": "agent-123"}) == {"id": "agent-123"}
