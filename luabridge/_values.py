"""Python data into the Lua tables a script sees.

JSON objects become tables with string keys and arrays become sequences. Two things Lua cannot say
directly are sent beside the value as paths for the kernel to fix up: which tables were empty arrays (so
``json.encode`` gives ``[]`` back, not ``{}``) and where nulls stood inside arrays (they become
``json.null``, so ``#t`` and ``ipairs`` see every element). Nulls in objects simply disappear, as nil.

Paths travel flat, one list for each kind: ``[n, key1, ..., keyn, n, key1, ...]``, so a fix-up costs Lua
a slot per key rather than a table per path. Their total length is bounded by a budget: a small text can
describe a great many deep fix-ups (``[[[...[[],[],[]]...]]]``), and they must not outgrow the run.

The conversion itself is lupa's ``table_from(recursive=True)``, which works in C. Paths are used rather
than shared placeholder objects because lupa 2.8 loses its reference to a container met twice at
different depths ("lost reference").
"""

from __future__ import annotations

from typing import Any

_CONTAINERS = (dict, list)

# What one entry of a flat path list costs in Lua (a TValue in the list's array part, doubled by growth).
PATH_ENTRY_COST = 32


class BudgetExceeded(Exception):
    """Raised when the fix-up paths of a value would need more entries than its budget allows."""


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


def prepare(value: Any, budget: int | None = None) -> tuple[Any, list, list]:
    """Return ``value`` with array nulls replaced by ``False``, and the flat paths of empty arrays and nulls.

    A path is the keys from the root (1-based indices for arrays), written after its length. The input is
    never modified: a container that needs a change is copied. ``budget`` bounds the total number of path
    entries; past it :class:`BudgetExceeded` is raised before more are built.
    """
    empties: list = []
    nulls: list = []
    path: list = []
    if type(value) not in _CONTAINERS or not _needs_fixing(value):
        return value, empties, nulls
    room = [budget if budget is not None else float("inf")]

    def record(into: list, last: Any = None) -> None:
        size = len(path) + (2 if last is not None else 1)
        room[0] -= size
        if room[0] < 0:
            raise BudgetExceeded
        if last is None:
            into.append(len(path))
            into.extend(path)
        else:
            into.append(len(path) + 1)
            into.extend(path)
            into.append(last)

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
            record(empties)
            return item
        copied = None
        if None in item:
            for index, child in enumerate(item, 1):
                if child is None:
                    record(nulls, index)
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


def to_lua(runtime: Any, value: Any, budget: int | None = None, *, fixups: bool = True) -> tuple:
    """Convert JSON-like ``value`` (as :func:`luabridge._json.loads` gives it) for the kernel:
    ``(lua_value,)``, or ``(lua_value, empties, nulls)`` when the kernel has fix-ups to make.

    ``budget`` bounds, in bytes of Lua memory, what the fix-up paths may take (see :func:`prepare`).
    ``fixups=False`` says the caller knows there is no empty array and no null in an array.
    """
    if not fixups:
        if type(value) not in _CONTAINERS:
            return (value,)
        return (runtime.table_from(value, recursive=True),)
    entries = None if budget is None else budget // PATH_ENTRY_COST
    prepared, empties, nulls = prepare(value, entries)
    if type(prepared) not in _CONTAINERS:
        return (prepared,)
    table = runtime.table_from(prepared, recursive=True)
    if not empties and not nulls:
        return (table,)
    return (table, runtime.table_from(empties), runtime.table_from(nulls))
