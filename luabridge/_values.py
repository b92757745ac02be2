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


def prepare(value: Any) -> tuple[Any, list[list], list[list]]:
    """Return ``value`` with array nulls replaced by ``False``, and the paths of empty arrays and nulls.

    A path is the list of keys from the root (1-based indices for arrays). The input is never modified:
    a list that needs a change is copied.
    """
    empties: list[list] = []
    nulls: list[list] = []

    def walk(item: Any, path: tuple) -> Any:
        copied = False
        if type(item) is dict:
            for key, child in item.items():
                if type(child) in _CONTAINERS:
                    new = walk(child, (*path, key))
                    if new is not child:
                        if not copied:
                            item, copied = dict(item), True
                        item[key] = new
            return item
        if not item:
            empties.append(list(path))
            return item
        if None in item:
            nulls.extend([*path, index + 1] for index, child in enumerate(item) if child is None)
            item, copied = [False if child is None else child for child in item], True
        for index, child in enumerate(item):
            if type(child) in _CONTAINERS:
                new = walk(child, (*path, index + 1))
                if new is not child:
                    if not copied:
                        item, copied = list(item), True
                    item[index] = new
        return item

    prepared = walk(value, ()) if type(value) in _CONTAINERS else value
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


def to_lua(runtime: Any, value: Any) -> Any:
    """Convert JSON-like ``value`` into a Lua table ``{value=, arrays=, nulls=}`` for the kernel to finish."""
    prepared, empties, nulls = prepare(value)
    payload = {"value": prepared, "arrays": empties, "nulls": nulls}
    try:
        return runtime.table_from(payload, recursive=True)
    except OverflowError:
        payload["value"] = _clamp_big_ints(prepared)
        return runtime.table_from(payload, recursive=True)
