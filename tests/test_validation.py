"""Tests for luabridge._validation: call forms, bound arguments, and the exact text of every failure."""

from __future__ import annotations

import re

import pytest

from luabridge._errors import ArgumentError, UsageError
from luabridge._validation import ArgumentValidator, describe_value, example_arguments, lua_literal

FUNCTION = {"\x00lua": "function"}
THREAD = {"\x00lua": "thread"}
USERDATA = {"\x00lua": "userdata"}

PAGE = {"type": "integer", "description": "Page number", "default": 1, "minimum": 1}
PER_PAGE = {"type": "integer", "description": "Results per page", "default": 50, "minimum": 1, "maximum": 100}
STATUS = {"type": "string", "description": "Filter by status", "enum": ["new", "open", "pending", "closed"]}


def obj(properties, required=()):
    return {
        "type": "object", "properties": properties, "required": list(required), "additionalProperties": False,
    }


SCHEMAS = {
    "list": obj({"page": PAGE, "per_page": PER_PAGE, "status": STATUS}),
    "get": obj({"id": {"type": "string", "description": "The item ID"}}, ["id"]),
    "create": obj({
        "user_id": {"type": "string", "description": "Owner"},
        "message": {"type": "string", "description": "First message"},
        "channel": {"type": "string"},
    }, ["user_id", "message"]),
    "whoami": obj({}),
    # words whose negations are close enough to look like typos of them
    "triage": obj({
        "status": {"type": "string", "enum": ["open", "resolved", "closed"]},
        "archived": {"type": "boolean"},
    }),
    # not flat: nested values, so every call takes the jsonschema path
    "search": obj({
        "query": {"type": "string"},
        "ratio": {"type": "number", "minimum": 0, "maximum": 1},
        "exact": {"type": "boolean", "default": False},
        "tags": {"type": "array", "items": {"type": "string"}, "default": []},
        "filter": obj({"name": {"type": "string"}}, ["name"]),
    }, ["query"]),
}
VALIDATORS = {name: ArgumentValidator(f"svc.{name}", schema) for name, schema in SCHEMAS.items()}

BOUND = [
    # (function, raw argument, number of Lua arguments, bound arguments)
    ("list", {"page": 1, "per_page": 25}, 1, {"page": 1, "per_page": 25}),
    ("list", {}, 1, {"page": 1, "per_page": 50}),
    ("list", None, 0, {"page": 1, "per_page": 50}),
    ("list", None, 1, {"page": 1, "per_page": 50}),
    ("list", [], 1, {"page": 1, "per_page": 50}),
    ("list", {"page": 2.0, "per_page": 100.0}, 1, {"page": 2, "per_page": 100}),
    ("list", {"status": "open"}, 1, {"page": 1, "per_page": 50, "status": "open"}),
    ("get", "agent-123", 1, {"id": "agent-123"}),
    ("get", {"id": "agent-123"}, 1, {"id": "agent-123"}),
    ("create", {"user_id": "u", "message": "hi"}, 1, {"user_id": "u", "message": "hi"}),
    ("whoami", {}, 1, {}),
    ("whoami", None, 0, {}),
    ("search", "q", 1, {"query": "q", "exact": False, "tags": []}),
    ("search", {"query": "q", "ratio": 1, "tags": ["a"]}, 1,
     {"query": "q", "ratio": 1, "exact": False, "tags": ["a"]}),
    ("search", {"query": "q", "filter": {"name": "n"}}, 1,
     {"query": "q", "exact": False, "tags": [], "filter": {"name": "n"}}),
]

ENUM = '"new", "open", "pending", "closed"'
LIST_FORM = "svc.list expects one table of named parameters, like svc.list({page = 1}); got"
GET_FORM = (
    'svc.get expects one table of named parameters, like svc.get({id = "..."}), '
    "or just its 'id'; got"
)
NOT_DATA = "only nil, booleans, numbers, strings and tables can be passed"
FAILURES = [
    # (failure kind, function, raw argument, number of Lua arguments, exact message)
    ("type", "list", {"status": 5}, 1,
     "svc.list: parameter 'status' must be a string, got a number 5"),
    ("type", "list", {"page": True}, 1,
     "svc.list: parameter 'page' must be an integer, got true"),
    ("type", "list", {"page": "1"}, 1,
     'svc.list: parameter \'page\' must be an integer, got a string "1"'),
    ("type", "get", {"id": {"a": 1}}, 1,
     "svc.get: parameter 'id' must be a string, got a table"),
    ("type", "get", {"id": None}, 1,
     "svc.get: parameter 'id' must be a string, got nil"),
    ("type", "get", {"id": False}, 1,
     "svc.get: parameter 'id' must be a string, got false"),
    ("type", "get", 42, 1,
     "svc.get: parameter 'id' must be a string, got a number 42"),
    ("type", "search", {"query": "q", "exact": "yes"}, 1,
     'svc.search: parameter \'exact\' must be a boolean (true or false), got a string "yes"'),
    ("type", "search", {"query": "q", "tags": "a"}, 1,
     'svc.search: parameter \'tags\' must be a list (a sequence table), got a string "a"'),
    ("type", "search", {"query": "q", "tags": ["a", 1]}, 1,
     "svc.search: parameter 'tags[2]' must be a string, got a number 1"),
    ("type", "search", {"query": "q", "filter": {"name": 5}}, 1,
     "svc.search: parameter 'filter.name' must be a string, got a number 5"),
    ("missing", "get", {}, 1,
     "svc.get: missing required parameter 'id' (a string: The item ID)"),
    ("missing", "get", None, 0,
     "svc.get: missing required parameter 'id' (a string: The item ID)"),
    ("missing", "create", {}, 1,
     "svc.create: 2 problems with the arguments:\n"
     "- missing required parameter 'user_id' (a string: Owner)\n"
     "- missing required parameter 'message' (a string: First message)"),
    ("missing", "search", {"query": "q", "filter": {}}, 1,
     "svc.search: parameter 'filter' is missing the required field 'name'"),
    ("enum", "list", {"status": "opne"}, 1,
     f'svc.list: parameter \'status\' must be one of {ENUM}; got a string "opne". Did you mean "open"?'),
    ("enum", "list", {"status": "OPEN"}, 1,
     f'svc.list: parameter \'status\' must be one of {ENUM}; got a string "OPEN". Did you mean "open"?'),
    ("enum", "list", {"status": "zzz"}, 1,
     f'svc.list: parameter \'status\' must be one of {ENUM}; got a string "zzz".'),
    # never the opposite meaning: an agent retries with what is suggested
    ("enum", "triage", {"status": "unresolved"}, 1,
     'svc.triage: parameter \'status\' must be one of "open", "resolved", "closed"; got a string "unresolved".'),
    ("enum", "triage", {"status": "not_resolved"}, 1,
     'svc.triage: parameter \'status\' must be one of "open", "resolved", "closed"; got a string "not_resolved".'),
    ("enum", "triage", {"status": "resolvd"}, 1,
     'svc.triage: parameter \'status\' must be one of "open", "resolved", "closed"; got a string "resolvd". '
     'Did you mean "resolved"?'),
    ("range", "list", {"page": 0}, 1,
     "svc.list: parameter 'page' must be at least 1, got 0"),
    ("range", "list", {"page": -1.0}, 1,
     "svc.list: parameter 'page' must be at least 1, got -1.0"),
    ("range", "list", {"per_page": 500}, 1,
     "svc.list: parameter 'per_page' must be at most 100, got 500"),
    ("range", "list", {"per_page": 1e20}, 1,
     "svc.list: parameter 'per_page' must be at most 100, got 1e+20"),
    ("range", "search", {"query": "q", "ratio": 1.5}, 1,
     "svc.search: parameter 'ratio' must be at most 1, got 1.5"),
    ("integer", "list", {"page": 1.5}, 1,
     "svc.list: parameter 'page' must be a whole number (an integer), got 1.5"),
    ("integer", "list", {"page": float("inf")}, 1,
     "svc.list: parameter 'page' must be a whole number (an integer), got inf"),
    ("unknown", "list", {"pagee": 1}, 1,
     "svc.list: unknown parameter 'pagee'. Did you mean 'page'? Valid parameters: page, per_page, status"),
    ("unknown", "list", {"limit": 1}, 1,
     "svc.list: unknown parameter 'limit'. Valid parameters: page, per_page, status"),
    ("unknown", "triage", {"unarchived": True}, 1,
     "svc.triage: unknown parameter 'unarchived'. Valid parameters: status, archived"),
    ("unknown", "triage", {"archivd": True}, 1,
     "svc.triage: unknown parameter 'archivd'. Did you mean 'archived'? Valid parameters: status, archived"),
    ("unknown", "whoami", {"x": 1}, 1,
     "svc.whoami: unknown parameter 'x': svc.whoami takes no parameters"),
    ("unknown", "search", {"query": "q", "filter": {"name": "n", "x": 1}}, 1,
     "svc.search: parameter 'filter' has a field it does not accept"),
    ("not a table", "list", "x", 1, f'{LIST_FORM} a string "x"'),
    ("not a table", "list", 5, 1, f"{LIST_FORM} a number 5"),
    ("not a table", "list", True, 1, f"{LIST_FORM} true"),
    ("not a table", "list", FUNCTION, 1, f"{LIST_FORM} a function"),
    ("not a table", "list", ["a"], 1, f"{LIST_FORM} a table of positional values"),
    ("not a table", "get", ["a"], 1, f"{GET_FORM} a table of positional values"),
    # two parameters are required: a lone value cannot stand for them, so no "or just its" is offered
    ("not a table", "create", "u", 1,
     "svc.create expects one table of named parameters, like "
     'svc.create({user_id = "...", message = "..."}); got a string "u"'),
    ("not a table", "whoami", "x", 1,
     'svc.whoami expects one table of named parameters, like svc.whoami({}); got a string "x"'),
    ("extra arguments", "list", {}, 2, f"{LIST_FORM} 2 arguments"),
    ("extra arguments", "get", "a", 3, f"{GET_FORM} 3 arguments"),
    ("extra arguments", "create", None, 2,
     "svc.create expects one table of named parameters, like "
     'svc.create({user_id = "...", message = "..."}); got 2 arguments'),
    ("lua value", "get", {"id": FUNCTION}, 1,
     "svc.get: parameter 'id' must be a string, got a function"),
    ("lua value", "get", THREAD, 1,
     "svc.get: parameter 'id' must be a string, got a thread"),
    ("lua value", "search", {"query": "q", "tags": ["a", USERDATA]}, 1,
     f"svc.search: parameter 'tags[2]' cannot be a userdata: {NOT_DATA}"),
    ("lua value", "search", {"query": "q", "filter": {"name": "n", "cb": FUNCTION}}, 1,
     f"svc.search: parameter 'filter.cb' cannot be a function: {NOT_DATA}"),
    ("several", "list", {"page": 0, "status": "opne", "limit": 1, "per_page": 2.5}, 1,
     "svc.list: 4 problems with the arguments:\n"
     "- parameter 'page' must be at least 1, got 0\n"
     "- parameter 'per_page' must be a whole number (an integer), got 2.5\n"
     f'- parameter \'status\' must be one of {ENUM}; got a string "opne". Did you mean "open"?\n'
     "- unknown parameter 'limit'. Valid parameters: page, per_page, status"),
    ("several", "get", {"ID": "a"}, 1,
     "svc.get: 2 problems with the arguments:\n"
     "- missing required parameter 'id' (a string: The item ID)\n"
     "- unknown parameter 'ID'. Did you mean 'id'? Valid parameters: id"),
]


@pytest.mark.parametrize(("function", "raw", "nargs", "expected"), BOUND)
def test_bind_returns_named_arguments_with_defaults(function, raw, nargs, expected):
    bound = VALIDATORS[function].bind(raw, nargs)
    assert bound == expected
    assert {k: type(v) for k, v in bound.items()} == {k: type(v) for k, v in expected.items()}  # 2.0 became 2


@pytest.mark.parametrize(("function", "raw", "nargs", "expected"), BOUND)
def test_fast_path_agrees_with_jsonschema(function, raw, nargs, expected):
    validator = VALIDATORS[function]
    if isinstance(raw, dict):
        assert validator._bind_checked(dict(raw)) == expected
        assert validator._fast is None or validator._bind_fast(raw) in (None, expected)


@pytest.mark.parametrize(("kind", "function", "raw", "nargs", "message"), FAILURES)
def test_failure_messages(kind, function, raw, nargs, message):
    with pytest.raises(ArgumentError) as caught:
        VALIDATORS[function].bind(raw, nargs)
    assert caught.value.message == message
    assert caught.value.kind == "validation"
    assert not re.search(r"\b(None|True|False|dict|NoneType)\b|\{'", message)  # no Python spellings


@pytest.mark.parametrize(("kind", "function", "raw", "nargs", "message"), FAILURES)
def test_fast_path_never_accepts_invalid_arguments(kind, function, raw, nargs, message):
    validator = VALIDATORS[function]
    if validator._fast is not None and type(raw) is dict and nargs == 1:
        assert validator._bind_fast(raw) is None


def test_flat_schemas_take_the_fast_path_and_nested_ones_do_not():
    assert VALIDATORS["list"]._fast is not None
    assert VALIDATORS["whoami"]._fast is not None
    assert VALIDATORS["search"]._fast is None


def test_bind_returns_a_new_dict_and_copies_mutable_defaults():
    raw = {"page": 2.0}
    bound = VALIDATORS["list"].bind(raw)
    assert raw == {"page": 2.0} and bound is not raw
    first = VALIDATORS["search"].bind({"query": "q"})
    first["tags"].append("x")
    assert VALIDATORS["search"].bind({"query": "q"})["tags"] == []


def test_long_strings_are_cut_and_special_characters_escaped():
    with pytest.raises(ArgumentError) as caught:
        VALIDATORS["list"].bind({"status": "x" * 100})
    assert f'got a string "{"x" * 37}"... (100 characters).' in caught.value.message
    with pytest.raises(ArgumentError) as caught:
        VALIDATORS["list"].bind({"status": 'a"b\n\x01'})
    assert 'got a string "a\\"b\\n\\1".' in caught.value.message


@pytest.mark.parametrize(("value", "literal", "described"), [
    (None, "nil", "nil"),
    (True, "true", "true"),
    (False, "false", "false"),
    (5, "5", "a number 5"),
    (-7, "-7", "a number -7"),
    (1.5, "1.5", "a number 1.5"),
    (2.0, "2.0", "a number 2.0"),
    (1e20, "1e+20", "a number 1e+20"),
    (0.1, "0.1", "a number 0.1"),
    (float("inf"), "inf", "a number inf"),
    ("x", '"x"', 'a string "x"'),
    ("", '""', 'a string ""'),
    ({"a": 1}, "{...}", "a table"),
    ([1, 2], "{...}", "a table"),
    ({}, "{...}", "a table"),
    (FUNCTION, "function", "a function"),
    (THREAD, "thread", "a thread"),
    (USERDATA, "userdata", "a userdata"),
])
def test_lua_spellings(value, literal, described):
    assert lua_literal(value) == literal
    assert describe_value(value) == described


@pytest.mark.parametrize(("schema", "expected"), [
    (SCHEMAS["list"], "{page = 1}"),
    (SCHEMAS["get"], '{id = "..."}'),
    (SCHEMAS["create"], '{user_id = "...", message = "..."}'),
    (SCHEMAS["whoami"], "{}"),
    (obj({"kind": STATUS, "n": {"type": "number"}}, ["kind", "n"]), '{kind = "new", n = 1}'),
    (obj({"with-dash": {"type": "boolean"}}), '{["with-dash"] = true}'),
])
def test_example_arguments(schema, expected):
    assert example_arguments(schema) == expected


@pytest.mark.parametrize(("schema", "message"), [
    ({"type": "object", "properties": {"a": {"type": "strng"}}}, "svc.bad: invalid parameters schema: "),
    ({"type": "array"}, "svc.bad: the parameters schema must be an object with properties"),
    (obj({"a": {"type": "string"}}, ["b"]), "svc.bad: required parameters missing from properties: ['b']"),
    (obj({"a": {"type": "integer", "default": "one"}}),
     "svc.bad: the default of 'a' does not match its own schema"),
])
def test_a_bad_schema_is_refused_at_registration(schema, message):
    with pytest.raises(UsageError, match="^" + message.replace("[", r"\[").replace("]", r"\]")):
        ArgumentValidator("svc.bad", schema)
