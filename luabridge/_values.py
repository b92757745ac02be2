"""Python data into the Lua tables a script sees.

JSON objects become tables with string keys and arrays become sequences. Two things Lua cannot say
directly are sent beside the value as paths for the kernel to fix up: which tables were empty arrays (so
``json.encode`` gives ``[]`` back, not ``{}``) and where nulls stood inside arrays (they become
``json.null``, so ``#t`` and ``ipairs`` see every element). Nulls in objects simply disappear, as nil.

The conversion itself is lupa's ``table_from(recursive=True)``, which works in C. Paths are used rather
than shared placeholder objects because lupa 2.8 loses its reference to a container met twice at
different depths ("lost reference").
"""

from __future__ import annotations

from typing import Any

_CONTAINERS = (dict, list)


def _needs_fixing(item: dict | list) -> bool:
    """Whether ``item`` holds an empty array or a null in an array: the quick scan before any path work."""
    if type(item) is dict:
        for child in item.values():
            kind = type(child)
            if (kind is dict or kind is list) and _needs_fixing(child):
                return True
        return False
    if not item or None in item:
        return True
    for child in item:
        kind = type(child)
        if (kind is dict or kind is list) and _needs_fixing(child):
            return True
    return False


def prepare(value: Any) -> tuple[Any, list[list], list[list]]:
    """Return ``value`` with array nulls replaced by ``False``, and the paths of empty arrays and nulls.

    A path is the list of keys from the root (1-based indices for arrays). The input is never modified:
    a container that needs a change is copied. The walk keeps one path list, extended and shortened as it
    goes, and copies it only where it records something.
    """
    empties: list[list] = []
    nulls: list[list] = []
    path: list = []
    if type(value) not in _CONTAINERS or not _needs_fixing(value):
        return value, empties, nulls

    def walk_dict(item: dict) -> dict:
        copied = None
        for key, child in item.items():
            kind = type(child)
            if kind is dict or kind is list:
                path.append(key)
                new = walk_dict(child) if kind is dict else walk_list(child)
                path.pop()
                if new is not child:
                    if copied is None:
                        copied = dict(item)
                    copied[key] = new
        return item if copied is None else copied

    def walk_list(item: list) -> list:
        if not item:
            empties.append(path.copy())
            return item
        copied = None
        if None in item:
            nulls.extend([*path, index] for index, child in enumerate(item, 1) if child is None)
            copied = [False if child is None else child for child in item]
        for index, child in enumerate(item):
            kind = type(child)
            if kind is dict or kind is list:
                path.append(index + 1)
                new = walk_dict(child) if kind is dict else walk_list(child)
                path.pop()
                if new is not child:
                    if copied is None:
                        copied = list(item)
                    copied[index] = new
        return item if copied is None else copied

    prepared = walk_dict(value) if type(value) is dict else walk_list(value)
    return prepared, empties, nulls


def _clamp_big_ints(value: Any) -> Any:
    """Return ``value`` with integers beyond 64 bits turned into floats (Lua integers are 64-bit)."""
    if type(value) is int and not -(2**63) <= value < 2**63:
        return float(value)
    if type(value) is dict:
        return {key: _clamp_big_ints(child) for key, child in value.items()}
    if type(value) is list:
        return [_clamp_big_ints(child) for child in value]
    return value


def to_lua(runtime: Any, value: Any) -> tuple:
    """Convert JSON-like ``value`` for the kernel: ``(lua_value,)``, or ``(lua_value, {arrays=, nulls=})``
    when it has empty arrays or nulls in arrays for the kernel to fix up."""
    prepared, empties, nulls = prepare(value)
    if type(prepared) not in _CONTAINERS:
        return (_clamp_big_ints(prepared),)
    try:
        table = runtime.table_from(prepared, recursive=True)
    except OverflowError:
        table = runtime.table_from(_clamp_big_ints(prepared), recursive=True)
    if not empties and not nulls:
        return (table,)
    return (table, runtime.table_from({"arrays": empties, "nulls": nulls}, recursive=True))
