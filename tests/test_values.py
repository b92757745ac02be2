"""Values across the boundary: JSON into Lua tables and Lua tables back into JSON, by the documented rules."""

from __future__ import annotations

import copy
import json

import pytest

from luabridge._values import prepare

ROUND_TRIPS = [
    "[]", "{}", "[[]]", '{"a":[]}', '[{}]', "[1,null,3]", "[null]", "[null,null]", '{"a":[null,{"b":[]}]}',
    "[1,2.5,-3,0]", '"text"', "5", "1.5", "true", "null", '{"k":"v\\n\\t\\"q\\" \\u00e9 \\ud83d\\ude00"}',
    "[9007199254740993]", "[1e+300]", '{"nested":{"deeper":{"deepest":[1,[2,[3]]]}}}',
]


@pytest.mark.parametrize("text", ROUND_TRIPS)
def test_json_round_trips_through_lua_unchanged(run, text):
    result = run(f"return json.encode(json.decode({json.dumps(text)}))")
    assert result.ok, result.error
    assert json.loads(result.value) == json.loads(text)


def test_nulls_in_objects_disappear(run):
    assert run('return json.encode(json.decode(\'{"a":null,"b":1}\'))').value == '{"b":1}'


def test_arrays_have_no_holes(run):
    code = "local t = json.decode('[1,null,3]') local n = 0 for _ in ipairs(t) do n = n + 1 end return #t, n"
    assert run(code).value == [3, 3]


def test_integers_stay_integers_and_floats_floats(run):
    assert run("local t = json.decode('[1, 1.0, 2.5]') return math.type(t[1]), math.type(t[2]), t[3]").value == [
        "integer", "float", 2.5]
    assert run("return 3, 3.0").value == [3, 3.0]
    assert type(run("return 3").value) is int and type(run("return 3.0").value) is float


@pytest.mark.parametrize("mode", ["in_process", "worker"])
def test_host_results_follow_the_same_rules(bridge, isolated_bridge, mode):
    # In a worker the answer arrives off the pipe: its fix-ups must survive the trip (and its freeing).
    chosen = bridge if mode == "in_process" else isolated_bridge
    result = chosen.run("""
        local item = app.integrations.echo.get_item("x")
        return #item.tags, json.encode(item.tags), #item.parts, item.parts[2] == json.null, item.missing,
               json.encode(item.nested.empty)
    """)
    assert result.value == [0, "[]", 3, True, None, "{}"]


@pytest.mark.parametrize("code, expected", [
    ("return {}", {}),
    ("return json.array({})", []),
    ("return {1, 2, 3}", [1, 2, 3]),
    ("return {[1] = 'a', [3] = 'c'}", {"1": "a", "3": "c"}),
    ("return {1, 2, x = 3}", {"1": 1, "2": 2, "x": 3}),
    ("return {[1.5] = 'f'}", {"1.5": "f"}),
    ("return {a = {b = {}}}", {"a": {"b": {}}}),
    ("return {json.null, 2}", [None, 2]),
    ("local t = json.decode('[]') t[1] = 'added' return t", ["added"]),
])
def test_lua_tables_become_the_json_they_look_like(run, code, expected):
    assert run(code).value == expected


@pytest.mark.parametrize("code, message", [
    ("local s = json.encode({[true] = 1})", "script:1: json.encode: cannot use a boolean as a JSON object key"),
    ("local s = json.encode({f = print})", "script:1: json.encode: cannot encode a function value"),
    ("local s = json.encode(math.huge)", "script:1: json.encode: cannot encode inf as a JSON number"),
    ("local t = {} t[1] = t local s = json.encode(t)",
     "script:1: json.encode: table contains a cycle (a table that contains itself)"),
    ("local t = {} for _ = 1, 250 do t = {t} end local s = json.encode(t)",
     "script:1: json.encode: table is nested more than 200 levels deep"),
    ("local v = json.decode('{bad')", "script:1: json.decode: invalid JSON: unexpected character, expected a "
                                   "string key: line 1 column 2 (char 1)"),
    ("local v = json.decode(5)", "script:1: json.decode: expected a string, got number"),
    ("json.null.x = 1", "script:1: json.null cannot be modified"),
])
def test_values_json_cannot_hold_are_clear_errors(run, code, message):
    assert run(code).error.message == message


def test_a_returned_function_is_an_error_naming_the_problem(run):
    result = run("return print")
    assert (result.error.type, result.error.message) == (
        "runtime", "the returned value cannot be converted to JSON: cannot encode a function value")


def test_invalid_utf8_is_replaced_never_a_crash(run):
    result = run("print(string.char(255)) return string.char(72, 255, 105)")
    assert result.value == "H\ufffdi" and result.output == "\ufffd\n"


def test_print_shows_tables_as_sorted_json_like_text(run):
    result = run("print({b = 1, a = {1, 2}, c = print}, json.null, nil, 1.0, setmetatable({}, {__tostring = "
                 "function() return 'custom' end}))")
    assert result.output == '{"a": [1, 2], "b": 1, "c": <function>}\tnull\tnil\t1.0\tcustom\n'


def test_prepare_reports_paths_and_never_modifies_its_input():
    data = {"a": [], "b": [1, None, {"c": []}], "d": {"e": [None]}, "f": None}
    original = copy.deepcopy(data)
    prepared, empties, nulls = prepare(data)
    assert data == original
    assert empties == [1, "a", 3, "b", 3, "c"]  # flat: each path's length, then its keys
    assert nulls == [2, "b", 2, 3, "d", "e", 1]
    assert prepared["b"][1] is False and prepared["d"]["e"] == [False]


def test_integers_beyond_64_bits_become_floats(run):
    assert run("return json.decode('[123456789012345678901234567890]')[1]").value == pytest.approx(1.2345678901e29)
