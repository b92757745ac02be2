"""JSON as it crosses into a script: strict in what it hands over, honest about what it will cost.

Every value the host hands a script travels as JSON bytes (through the worker's pipe, or in this process
the same way), so what reaches the Lua side can only ever be objects, arrays, strings, numbers, booleans
and null: a non-JSON object is refused where it is encoded. :func:`loads` guarantees text Lua and lupa can
always carry: a lone surrogate (an escaped "\\ud800", valid JSON but not Unicode) becomes U+FFFD, and
nesting is bounded (orjson stops at 1,024 levels, the standard parser at the recursion limit).
:func:`measure` bounds, from the bytes alone, the Lua memory the decoded value will take, so a
conversion that would pass a run's memory limit is refused before anything is built.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

# Upper bounds of what one decoded element costs in Lua 5.4 (64-bit): a table with its header and the
# first slots it grows, one slot or hash node per value, and a string's header beside its bytes. Measured
# against lupa's allocator in tests/test_json_measure.py, which keeps these honest.
TABLE_COST = 120
VALUE_COST = 64
# Every byte but those that structure JSON (its skeleton, see measure).
_NOT_SKELETON = bytes(sorted(set(range(256)) - set(b'[]{},:')))


class JSONError(ValueError):
    """Raised for bytes that are not JSON a script can receive; the message says why, briefly."""


def dumps(value: Any) -> bytes:
    """Encode JSON-like ``value``; raise :class:`TypeError` for anything JSON cannot hold."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        if "surrogates" not in str(exc) and "64-bit" not in str(exc):
            raise TypeError(str(exc)) from None
    return orjson.dumps(_repair(value))


def loads(data: bytes | str) -> Any:
    """Decode JSON text, with lone surrogates replaced and nesting bounded; raise :class:`JSONError`."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):
            raise JSONError(_reason(exc)) from None
        # orjson refuses lone surrogates; the standard parser accepts them, and they are replaced after.
        try:
            value = _repair(json.loads(data, parse_int=_int64))
        except (ValueError, RecursionError) as inner:
            raise JSONError(_reason(inner)) from None
    return value


def measure(data: bytes | bytearray, room: float = 0.0) -> tuple[int, bool]:
    """An upper bound, in bytes, of the Lua memory the compact JSON ``data`` (what the host writes) decodes
    into, and whether the decoded value may hold an empty array or a null in an array (what the kernel
    fixes up, see ``_values.py``): ``False`` is certain.

    In compact JSON those spell ``[]``, ``[null`` and ``,null`` (after a comma, an object has a key); the
    same bytes inside a string may say ``True`` for nothing, never ``False`` for something. For the cost,
    every container opens with ``[`` or ``{`` and every further value follows a ``,`` or a ``:``: counting
    them in the answer's skeleton (its structure alone) over-counts (the same bytes inside strings count
    too) but never under-counts. When even the most any byte can cost fits twice in ``room`` (the bytes
    the run has left), that bound is the cost and nothing is counted.
    """
    fixups = _fixups(data)
    most = len(data) * (TABLE_COST + 1) + VALUE_COST
    if most * 2 <= room:
        return most, fixups
    skeleton = data.translate(None, _NOT_SKELETON)
    containers = skeleton.count(b"[") + skeleton.count(b"{")
    values = skeleton.count(b",") + skeleton.count(b":") + 1
    return len(data) + containers * TABLE_COST + values * VALUE_COST, fixups


def _fixups(data: bytes | bytearray) -> bool:
    """Whether compact JSON ``data`` spells ``[]``, ``[null`` or ``,null`` (see measure).

    All three are in an array, so they come after the first ``[``. Most answers open few arrays: looking
    after each of the next few ``[`` (found with memchr) is many times faster than Python's search for a
    pair of bytes, which reads about a byte per nanosecond. ``find``, not ``in``: bytes' ``in`` first tries
    its argument as an integer, and that failure costs more than a short search.
    """
    find = data.find
    first = at = find(b"[")
    if at < 0:
        return False
    for _ in range(8):
        if data.startswith(b"[]", at):
            return True
        at = find(b"[", at + 1)
        if at < 0:
            break
    else:
        if find(b"[]", at) >= 0:
            return True
    return find(b"null", first) >= 0 and (find(b"[null", first) >= 0 or find(b",null", first) >= 0)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError) or "depth" in str(exc):
        return "nested too deeply"
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."


def lone_surrogate(text: str) -> int | None:
    """The index of the first lone surrogate in ``text`` (text UTF-8 cannot encode), or ``None``."""
    if text.isascii():
        return None
    found = _LONE_SURROGATE.search(text)
    return found.start() if found else None


def repair_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so that it can always be encoded as UTF-8."""
    return text if text.isascii() else _LONE_SURROGATE.sub("\ufffd", text)


def _int64(text: str) -> int | float:
    """An integer Lua can hold (64 bits), else the nearest float, as orjson decodes it."""
    value = int(text)
    return value if -(2**63) <= value < 2**63 else float(value)


def _repair(value: Any) -> Any:
    """``value`` with lone surrogates replaced (keys included) and integers beyond 64 bits made floats."""
    if type(value) is str:
        return repair_text(value)
    if type(value) is int:
        return value if -(2**63) <= value < 2**63 else float(value)
    if type(value) is dict:
        return {_repair(key): _repair(child) for key, child in value.items()}
    if type(value) is list:
        return [_repair(child) for child in value]
    return value
