"""Tests for luabridge._docs over a small made-up integration: every page kind, lookup, listing, search;
and what a bridge serves: no integration named without it, Freshchat's guides under its own pages."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from luabridge import Bridge
from luabridge._docs import MAX_QUERY_CHARS, MAX_QUERY_WORDS, DocSet, served
from luabridge._errors import LookupFailure
from luabridge._registry import AccountScheme, Function, Integration


def obj(properties, required=()):
    return {
        "type": "object", "properties": properties, "required": list(required), "additionalProperties": False,
    }


FUNCTIONS = (
    Function(
        "list_items", "List items.", "List the shop's items, newest first.", "read",
        obj({
            "page": {"type": "integer", "description": "Page number (default: 1)", "default": 1,
                     "minimum": 1},
            "per_page": {"type": "integer", "description": "Items per page", "default": 20, "minimum": 1,
                         "maximum": 100},
            "state": {"type": "string", "description": "Only items in this state", "enum": ["draft", "live"]},
        }),
        lambda client, args, ctx: client.list_items(args, ctx),
        ("local r = app.integrations.shop.list_items({page = 2})\nprint(#r.items)",),
    ),
    Function(
        "get_item", "Get one item.", "Get one item by its ID, with its price history.", "read",
        obj({"id": {"type": "string", "description": "The item ID"}}, ["id"]),
        lambda client, args, ctx: client.get_item(args, ctx),
        ('local item = app.integrations.shop.get_item("item-1")\nprint(item.name)',
         'print(app.integrations.shop.get_item({id = "item-2"}).price)'),
        result={
            "type": "object", "description": "The item.", "required": ["id", "prices"],
            "properties": {
                "id": {"type": "string", "description": "The item's ID"},
                "condition": {"type": "string", "description": "Its condition", "enum": ["new", "used"]},
                "prices": {"type": "array", "description": "Its prices | oldest first", "items": {
                    "type": "object", "required": ["amount"],
                    "properties": {"amount": {"type": "integer", "description": "In cents"},
                                   "tags": {"type": "array", "items": {"type": "string"}}}}},
                "seller": {"type": "object", "description": "Who sells it",
                           "properties": {"name": {"type": "string", "description": "The seller's name"}}},
            },
        },
    ),
    Function(
        "create_item", "Create an item.", "Create a draft item, visible only to staff.", "write",
        obj({"name": {"type": "string", "description": "Item name | shown to buyers"}}, ["name"]),
        lambda client, args, ctx: client.create_item(args, ctx),
    ),
)
REFERENCE = "# Shop — Lua API\n\nThe shop reference, verbatim.  \n"
SHOP = Integration(
    name="shop", title="Shop", functions=FUNCTIONS, reference=REFERENCE,
    accounts=AccountScheme("SHOP", "https://shop.invalid", lambda url: url), connect=lambda account: None,
    guides={"recipes": "# Recipes\n\nHow to combine shop calls. More text.\n"},
)
GUIDES = {
    "overview": "# Overview\n\nStart here: how scripts work.\n",
    "errors": "# Errors\n\nWhat can go wrong.\n",
}
PAGES = [
    "errors", "integrations", "integrations.shop", "integrations.shop.create_item",
    "integrations.shop.default", "integrations.shop.eu", "integrations.shop.get_item",
    "integrations.shop.list_items", "integrations.shop.recipes", "integrations.shop.work", "overview",
]

GET_ITEM_PAGE = """\
# shop.get_item

Get one item.

Get one item by its ID, with its price history.

Operation: read (it only reads data).

## Parameters

| Name | Type | Required | Description |
|------|------|----------|-------------|
| `id` | string | yes | The item ID |

## Result

The item.

A field whose "Always" column says no may be absent (nil in Lua).

| Field | Type | Always | Description |
|-------|------|--------|-------------|
| `id` | string | yes | The item's ID |
| `condition` | string | no | Its condition. One of `new`, `used`. |
| `prices` | array of object | yes | Its prices \\| oldest first |
| `prices[i].amount` | integer | yes | In cents |
| `prices[i].tags` | array of string | no |  |
| `seller` | object | no | Who sells it |
| `seller.name` | string | no | The seller's name |

## Calling it

```lua norun
app.integrations.shop.get_item({id = "..."})
app.integrations.shop.shop_get_item({id = "..."})  -- the same, prefixed name
app.integrations.shop.get_item("...")  -- just the 'id'
app.integrations.shop.default.get_item({id = "..."})  -- the default account, explicitly
app.integrations.shop.eu.get_item({id = "..."})  -- the account 'eu'
app.integrations.shop.work.get_item({id = "..."})  -- the account 'work'
```

Arguments are checked against the parameters before anything is sent.

## Examples

```lua
local item = app.integrations.shop.get_item("item-1")
print(item.name)
```

```lua
print(app.integrations.shop.get_item({id = "item-2"}).price)
```
"""


@pytest.fixture
def docs():
    return DocSet([SHOP], {"shop": ["work", "default", "eu"]}, guides=GUIDES)


def test_integration_page_is_the_reference_exactly(docs):
    assert docs.read("integrations.shop") == REFERENCE
    assert docs.read("app.integrations.shop") == REFERENCE


def test_function_page_is_generated_from_the_function(docs):
    assert docs.source("integrations.shop.get_item") == GET_ITEM_PAGE
    assert docs.read("integrations.shop.get_item") == GET_ITEM_PAGE.replace("```lua norun\n", "```lua\n")


def test_a_function_without_a_result_shape_has_no_result_section(docs):
    assert "## Result" not in docs.read("integrations.shop.list_items")


def test_pages_are_served_without_test_markers():
    guide = "# G\n\nText.\n\n```lua norun\nx()\n```\n\n  ~~~~lua  norun \ny()\n~~~~\n```lua\nz()\n```\n"
    docs = DocSet([SHOP], {}, guides={"g": guide})
    assert docs.read("g") == "# G\n\nText.\n\n```lua\nx()\n```\n\n  ~~~~lua\ny()\n~~~~\n```lua\nz()\n```\n"
    assert docs.source("g") == guide
    assert all("norun" not in docs.read(name) for name in docs.list())
    assert served("prose that says norun\n```lua norun-ish\n") == "prose that says norun\n```lua norun-ish\n"


@pytest.mark.parametrize(("guide", "summary"), [
    ("# T\n\nOne sentence that wraps\nonto the next line. A second one.\n",
     "One sentence that wraps onto the next line."),
    ("# T\n\nUse it, e.g. for tests. More.\n", "Use it, e.g. for tests."),
    ("# T\n\nNo stop at all\n\nNext paragraph.\n", "No stop at all"),
    ("# T\n\n- a list\n\nProse after it.\n", "Prose after it."),
])
def test_the_index_never_cuts_a_summary_mid_sentence(guide, summary):
    docs = DocSet([], {}, guides={"g": guide})
    assert docs.index().splitlines()[7] == f"g             {summary}"


@pytest.mark.parametrize(("wanted", "suggested"), [
    ("shop", "integrations.shop"),
    ("get_item", "integrations.shop.get_item"),
    ("shop.get_itme", "integrations.shop.get_item"),
    ("integrations.shop.recipe", "integrations.shop.recipes"),
])
def test_an_unknown_page_gets_a_did_you_mean(docs, wanted, suggested):
    with pytest.raises(LookupFailure) as caught:
        docs.read(wanted)
    assert f"Did you mean: {suggested}" in caught.value.message


def test_an_unknown_page_is_never_offered_its_opposite():
    docs = DocSet([], {}, guides={"resolved": "# R\n", "errors": "# E\n"})
    with pytest.raises(LookupFailure) as caught:
        docs.read("unresolved")
    assert "Did you mean" not in caught.value.message


@pytest.mark.parametrize("page", [
    "integrations.shop.shop_get_item",
    "app.integrations.shop.get_item",
    "app.integrations.shop.shop_get_item",
    "Integrations.Shop.Get_Item",
    "App.Integrations.Shop.Shop_Get_Item",
    "  integrations.shop.get_item ",
])
def test_function_page_answers_to_every_spelling(docs, page):
    assert docs.source(page) == GET_ITEM_PAGE


def test_parameter_table_shows_defaults_choices_and_bounds(docs):
    page = docs.read("integrations.shop.list_items")
    assert "| `page` | integer | no | Page number (default: 1). At least 1. |" in page
    assert "| `per_page` | integer | no | Items per page. Default `20`, from 1 to 100. |" in page
    assert '| `state` | string | no | Only items in this state. One of `"draft"`, `"live"`. |' in page
    assert "app.integrations.shop.list_items()  -- the same as passing {}" in page
    assert "## Example\n\n```lua\nlocal r = app.integrations.shop.list_items({page = 2})\n" in page


def test_write_function_page_says_it_writes_and_escapes_pipes(docs):
    page = docs.read("integrations.shop.create_item")
    assert "Operation: write (it changes data; a host that allows only reads refuses it" in page
    assert r"| `name` | string | yes | Item name \| shown to buyers |" in page
    assert "## Example" not in page


def test_account_pages(docs):
    work = docs.read("integrations.shop.work")
    assert work.startswith(
        "# Shop account 'work'\n\n`app.integrations.shop.work` uses the account configured as 'work'.\n"
    )
    assert "Every function works the same under it; only the credentials differ." in work
    assert "app.integrations.shop.work.<function>({...})" in work
    assert "Configured accounts: default, eu, work." in work
    assert "- `create_item` (write): Create an item.\n" in work
    default = docs.read("integrations.shop.default")
    assert "exactly like `app.integrations.shop` itself" in default


def test_default_account_page_exists_without_configured_accounts():
    docs = DocSet([SHOP], {}, guides={})
    assert docs.list("integrations.shop.") == [
        "integrations.shop.create_item", "integrations.shop.default", "integrations.shop.get_item",
        "integrations.shop.list_items", "integrations.shop.recipes",
    ]
    assert "app.integrations.shop.<account>.get_item" in docs.read("integrations.shop.get_item")


def test_integrations_page(docs):
    assert docs.read("integrations") == (
        "# Integrations\n\n## Shop\n\n"
        "- Namespace: `app.integrations.shop` (3 functions: 2 read, 1 write)\n"
        "- Accounts: default, eu, work\n"
        '- Reference: lua_read_doc("integrations.shop")\n'
    )


def test_guides_and_integration_guides_are_served_verbatim(docs):
    assert docs.read("overview") == GUIDES["overview"]
    assert docs.read("integrations.shop.recipes") == SHOP.guides["recipes"]


def test_guides_default_to_the_shipped_docs_folder():
    docs = DocSet([], {})
    assert {"overview", "errors"} <= set(docs.list())
    assert docs.read("overview").startswith("# Overview\n")


def test_list_is_sorted_and_holds_every_readable_page_under_short_names(docs):
    assert docs.list() == PAGES
    for page in docs.list():
        assert docs.read(page)
    assert docs.list("integrations.shop.get") == ["integrations.shop.get_item"]
    assert docs.list("app.integrations.shop.e") == ["integrations.shop.eu"]
    assert docs.list("nothing") == []


@pytest.mark.parametrize(("page", "message"), [
    ("integrations.shop.get_itme",
     "Unknown doc page 'integrations.shop.get_itme'. Did you mean: integrations.shop.get_item? "
     "lua_list_docs() lists all 11 pages."),
    ("integrations.shop.wrk",
     "Unknown doc page 'integrations.shop.wrk'. Did you mean: integrations.shop.work? "
     "lua_list_docs() lists all 11 pages."),
    ("overveiw", "Unknown doc page 'overveiw'. Did you mean: overview? lua_list_docs() lists all 11 pages."),
    ("zzz", "Unknown doc page 'zzz'. Start with: errors, integrations, integrations.shop, overview. "
     "lua_list_docs() lists all 11 pages."),
])
def test_unknown_page_names_the_closest_pages(docs, page, message):
    with pytest.raises(LookupFailure) as caught:
        docs.read(page)
    assert caught.value.message == message
    assert caught.value.kind == "lookup"


def test_unknown_page_lists_every_page_when_there_are_few():
    docs = DocSet([], {}, guides={"alpha": "# A\n", "beta": "# B\n"})
    with pytest.raises(LookupFailure, match=r"^Unknown doc page 'alpah'\. Did you mean: alpha\? "
                                            r"Pages: alpha, beta, integrations\.$"):
        docs.read("alpah")


def test_search_ranks_pages_matching_every_word_first(docs):
    results = docs.search("PRICE history")
    assert results == [{
        "page": "integrations.shop.get_item", "title": "shop.get_item",
        "snippet": "Get one item by its ID, with its price history.",
    }]
    pages = [result["page"] for result in docs.search("draft state")]
    assert pages[0] == "integrations.shop.list_items"  # both words; create_item has only "draft"
    assert "integrations.shop.create_item" in pages


def test_search_limits_and_empty_queries(docs):
    assert len(docs.search("item", limit=2)) == 2
    assert docs.search("item", limit=0) == []
    assert docs.search("") == []
    assert docs.search("   ") == []
    assert docs.search("zzyzx quux") == []


def test_search_snippet_is_cut_around_the_match():
    long_line = "word " * 60 + "needle " + "word " * 60
    docs = DocSet([], {}, guides={"long": f"# Long\n\n{long_line}\n"})
    [result] = docs.search("needle")
    assert result["title"] == "Long"
    assert result["snippet"].startswith("...") and result["snippet"].endswith("...")
    assert "needle" in result["snippet"] and len(result["snippet"]) <= 166


def test_index_lists_every_page_with_its_description(docs):
    index = docs.index()
    assert index.startswith("# Documentation\n\nRead a page with lua_read_doc(\"<page>\")")
    assert "errors                         What can go wrong.\n" in index
    assert "integrations.shop              Shop: the full reference (3 functions: 2 read, 1 write)." in index
    assert "integrations.shop.get_item     Get one item.\n" in index
    assert "integrations.shop.recipes      How to combine shop calls.\n" in index
    assert "integrations.shop.eu           Account namespace: account 'eu'.\n" in index
    assert "prefixed names (integrations.shop.shop_list_items)" in index
    assert "(app.integrations.shop.list_items)" in index
    for page in docs.list():
        assert f"\n{page} " in index


HOSTILE = [
    "x" * 900_000,
    "integrations.shop." + "get_item" * 100_000,
    "app." * 200_000,
    "integrations." * 70_000,
    " ".join(f"w{i}" for i in range(300_000)),
    "item " * 300_000,
    "\x00", "\udcff", "\ud800integrations", "\ufffe\uffff", "integrations.shop.\x1b[2J", "\u202eerrors", "",
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda text: f"{ascii(text[:12])}...{len(text)}")
def test_any_text_is_answered_quickly_with_data_or_a_lookup_failure(docs, text):
    for method, expected in ((docs.read, str), (docs.list, list), (docs.search, list)):
        started = time.monotonic()
        try:
            answer = method(text)
        except LookupFailure as exc:
            answer = exc.message
            assert method == docs.read and answer.startswith("Unknown doc page '")
        assert isinstance(answer, expected)
        assert time.monotonic() - started < 1, method.__name__


def test_a_long_unknown_name_is_quoted_short_and_gets_no_suggestions(docs):
    with pytest.raises(LookupFailure) as caught:
        docs.read("integrations.shop.get_itme" + " " * 10 + "x" * 900_000)
    assert caught.value.message == (
        "Unknown doc page 'integrations.shop.get_itme          " + "x" * 44 + "...' (900036 characters). "
        "Start with: errors, integrations, integrations.shop, overview. lua_list_docs() lists all 11 pages."
    )


def test_an_unknown_name_is_quoted_with_its_unprintable_characters_escaped(docs):
    with pytest.raises(LookupFailure) as caught:
        docs.read("over\x1b]0;pwned\x07view\x00\udcff")
    assert caught.value.message.startswith(r"Unknown doc page 'over\x1b]0;pwned\x07view\x00\udcff'.")


def test_search_reads_only_the_first_words_of_a_query(docs):
    assert docs.search("price")
    assert docs.search(" ".join(["zzz"] * (MAX_QUERY_WORDS + 5) + ["price"]))  # repeated words count once
    assert docs.search(" ".join(f"z{i}" for i in range(MAX_QUERY_WORDS)) + " price") == []
    assert docs.search(" " * MAX_QUERY_CHARS + "price") == []


ROOT = Path(__file__).resolve().parents[1]
BUILT_IN = sorted(path.parent.name for path in (ROOT / "integrations").glob("*/__init__.py"))


def test_a_bridge_without_integrations_names_none_in_its_docs():
    assert "freshchat" in BUILT_IN
    with Bridge(integrations=[], isolation=False) as bridge:
        texts = [bridge.docs.index()] + [bridge.docs.read(page) for page in bridge.docs.list()]
        texts += [hit["snippet"] for name in BUILT_IN for hit in bridge.docs.search(name)]
    assert len(texts) > 5
    for text in texts:
        for name in BUILT_IN:
            assert name not in text.lower(), text[:80]


@pytest.mark.parametrize(("page", "phrase"), [
    ("accounts", "FRESHCHAT_<ALIAS>_TOKEN"),
    ("errors", "HTTP 404 AGENT_NOT_FOUND"),
    ("examples", "freshchat.freshchat_get_agent"),
])
def test_freshchats_guides_are_served_under_its_pages(page, phrase):
    guide = (ROOT / "integrations" / "freshchat" / "guides" / f"{page}.md").read_text(encoding="utf-8")
    with Bridge(integrations=["integrations.freshchat"], isolation=False) as bridge:
        result = bridge.run(f'return lua_read_doc("integrations.freshchat.{page}")')
        listed = bridge.docs.list("integrations.freshchat.")
    assert result.ok, result.error
    assert result.value == served(guide) and phrase in guide
    assert f"integrations.freshchat.{page}" in listed
