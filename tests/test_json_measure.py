"""_json.measure: an upper bound of what an answer costs in Lua, and whether it needs the kernel's fix-ups.

Both are read from the bytes alone, before anything is built, so both must hold for any answer: the cost
never under-counts what lupa allocates, and "no fix-ups" is never said of an answer that needs them.
"""

import random

import lupa.lua54 as lua54
import orjson
import pytest

from luabridge import _json
from luabridge._values import _needs_fixing

# Strings that hold JSON's own structure and the word null, so that counting raw bytes over-counts.
TRICKY_TEXT = ['[]', '[null', ',null', '{"a":1}', 'a, nuts', '"quoted"', 'null', '[1]', 'é [ ] ü', '']


def _document(rng: random.Random, depth: int = 0):
    kind = rng.choice(["dict", "list", "scalar", "scalar"] if depth < 4 else ["scalar"])
    if kind == "dict":
        return {f"k{i}{rng.choice(TRICKY_TEXT)}": _document(rng, depth + 1) for i in range(rng.randint(0, 5))}
    if kind == "list":
        return [_document(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    return rng.choice([None, True, False, 0, -7, 2**40, 1.5, *TRICKY_TEXT])


DOCUMENTS = [orjson.dumps(_document(random.Random(seed))) for seed in range(300)] + [
    b"[]", b"{}", b"[null]", b"[1,null]", b'{"a":null}', b'{"a":[]}', b'["[]"]', b'[["null"]]', b"1", b'"x"',
]


def _lua_growth(data: bytes) -> int:
    runtime = lua54.LuaRuntime(register_eval=False, register_builtins=False, max_memory=0)
    value = orjson.loads(data)
    before = runtime.get_memory_used()
    keep = runtime.table_from(value, recursive=True) if isinstance(value, (dict, list)) else value
    grown = runtime.get_memory_used() - before
    del keep
    return grown


@pytest.mark.parametrize("data", DOCUMENTS, ids=range(len(DOCUMENTS)))
def test_the_cost_never_under_counts_what_lupa_builds(data):
    cost, _ = _json.measure(data)
    assert cost >= _lua_growth(data)


@pytest.mark.parametrize("data", DOCUMENTS, ids=range(len(DOCUMENTS)))
def test_no_fixups_is_only_said_of_answers_that_need_none(data):
    _, fixups = _json.measure(data)
    value = orjson.loads(data)
    needs = isinstance(value, (dict, list)) and _needs_fixing(value)
    assert fixups or not needs


def test_fixups_are_found_in_compact_answers_that_need_them():
    many_arrays = b"[" + b",".join(b"[%d]" % i for i in range(20)) + b",[]]"  # past the first few "["
    text_brackets = b'["' + b"[" * 30 + b'",[]]'
    for data in (b"[]", b'{"a":[]}', b"[null]", b'[1,null]', b'{"a":[{"b":[]}]}', many_arrays, text_brackets):
        assert _json.measure(data)[1], data
    # A null in an object disappears as nil, and text is not structure; text that spells "[]" may still
    # say yes (the fix-up walk then finds nothing to do), but plain answers like these do not.
    many_full_arrays = b"[" + b",".join(b"[%d]" % i for i in range(20)) + b"]"
    for data in (b'{"a":null}', b'[["null"]]', b'{"a":[1,2]}', b'[{"b":"x, nul"}]', many_full_arrays):
        assert not _json.measure(data)[1], data


@pytest.mark.parametrize("data", DOCUMENTS[:50], ids=range(50))
def test_with_room_to_spare_the_cheap_bound_is_still_a_bound(data):
    exact, fixups = _json.measure(data)
    room = 10**12
    cheap, cheap_fixups = _json.measure(data, room)
    assert cheap >= exact and cheap * 2 <= room
    assert cheap_fixups == fixups
    # Without that much room, the cost is counted.
    assert _json.measure(data, cheap)[0] == exact
