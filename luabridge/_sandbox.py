"""One run of one script in a fresh, sandboxed Lua 5.4 runtime, in this process.

The kernel (``_kernel.lua``) builds the script's world; this module creates the runtime, hands the kernel
its host callbacks, and turns what comes back into an :class:`Outcome`. Every callback handed to Lua is
wrapped so that no Python exception, and so no Python object, ever reaches the script.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

import lupa.lua54 as lua54  # Lua 5.4 explicitly: plain `import lupa` picks the newest Lua

from ._limits import Limits
from ._values import to_lua

logger = logging.getLogger("luabridge")

KERNEL_SOURCE = resources.files("luabridge").joinpath("_kernel.lua").read_text(encoding="utf-8")


def _precompile(source: str) -> bytes:
    """The kernel as Lua 5.4 bytecode, compiled once per process: each run loads it without parsing it."""
    compiler = lua54.LuaRuntime(encoding=None, register_eval=False, register_builtins=False)
    dump = compiler.eval("function(source) return string.dump(assert(load(source, '=kernel', 't')), true) end")
    return dump(source.encode("utf-8"))


KERNEL_CHUNK = _precompile(KERNEL_SOURCE)


@dataclass(frozen=True)
class Outcome:
    """How a run ended: ``value`` is the returned value (JSON-like) when ``error_type`` is ``None``."""

    value: Any = None
    error_type: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_type is None


class Host(Protocol):
    """What a run asks of its host. Each method returns a kernel reply (see ``_kernel.lua``):
    ``("ok", payload)``, ``("error", kind, message)`` or ``("trip", kind, message)``; ``payload`` is the
    JSON-like value to hand to the script."""

    def resolve(self, path: str, key: Any) -> tuple: ...

    def call(self, target: int, nargs: int, args: Any, colon: bool, encode_error: str | None) -> tuple: ...

    def read_doc(self, page: Any = None) -> tuple: ...

    def list_docs(self, prefix: Any = None) -> tuple: ...

    def search_docs(self, query: Any = None) -> tuple: ...

    def output(self, text: str) -> None: ...


# How a script's error names the host operation that failed.
_OPERATION_NAMES = {"resolve": "name resolution", "call": "an integration call", "json_decode": "json.decode"}


def _internal_error(operation: str) -> tuple:
    where = _OPERATION_NAMES.get(operation, operation)
    logger.exception("internal error in %s", where)
    return ("error", "runtime", f"internal error in {where} (a bug in the host, logged there)")


class _Session:
    """The state of one run: the runtime, its memory baseline, and the guarded callbacks."""

    def __init__(self, host: Host, limits: Limits) -> None:
        self.host_object = host
        self.limits = limits
        self.operations: dict[str, Callable[..., tuple]] = {
            "resolve": host.resolve, "call": self.call, "json_decode": _json_decode,
            "lua_read_doc": host.read_doc, "lua_list_docs": host.list_docs, "lua_search_docs": host.search_docs,
        }
        self.runtime = lua54.LuaRuntime(
            register_eval=False, register_builtins=False, unpack_returned_tuples=True, max_memory=0
        )
        self.memory_ceiling = 0

    def reply(self, reply: tuple) -> tuple:
        """Turn a host reply's payload into Lua tables (the memory limit is lifted around this call)."""
        if reply[0] == "ok":
            return ("ok", *to_lua(self.runtime, reply[1]))
        return reply

    def host(self, operation: str, *args: Any) -> tuple:
        """The kernel's one door to the host: never raises, and lifts the memory limit until the kernel,
        once the reply is converted, puts it back (``memory_on``)."""
        self.runtime.set_max_memory(0)
        try:
            return self.reply(self.operations[operation](*args))
        except Exception:
            return _internal_error(operation)

    def call(self, target: int, nargs: int, args: Any, colon: bool, encode_error: str | None) -> tuple:
        """An integration call; ``args`` is JSON text, or a flat Lua table the kernel checked (string keys,
        valid UTF-8, scalar values), or ``None``."""
        if args is not None:
            args = json.loads(args) if isinstance(args, str) else dict(args.items())
        return self.host_object.call(target, nargs, args, colon, encode_error)

    def memory_on(self) -> None:
        self.runtime.set_max_memory(self.memory_ceiling)

    def output(self, text: str) -> None:
        try:
            self.host_object.output(text)
        except Exception:
            logger.exception("internal error while capturing output")

    def callbacks(self, deadline: float) -> Any:
        """What the kernel receives: plain numbers, and as few Python callables as it needs."""
        return self.runtime.table_from({
            "now": time.monotonic, "emit": self.output, "memory_on": self.memory_on, "host": self.host,
            "deadline": deadline, **self.limits.to_dict(),
        })


def _json_decode(text: str) -> tuple:
    try:
        return ("ok", json.loads(text))
    except (ValueError, RecursionError) as exc:
        return ("error", "runtime", f"json.decode: invalid JSON: {exc}")


def run_script(code: str, *, host: Host, limits: Limits, deadline: float) -> Outcome:
    """Run ``code`` in a fresh sandboxed runtime and say how it ended.

    ``deadline`` is the ``time.monotonic()`` value at which the run stops with a ``timeout`` error.
    In this process the time limit is checked between Lua instructions only: one long C call (a
    catastrophic pattern match) can outlive it. The worker process makes it hard.
    """
    session = _Session(host, limits)
    runtime = session.runtime
    try:
        runner = runtime.execute(KERNEL_CHUNK, session.callbacks(deadline), name="=kernel", mode="b")
        session.memory_ceiling = limits.memory + runtime.get_memory_used()
        session.memory_on()
        status, *rest = runner(code)
    except lua54.LuaMemoryError:
        return Outcome(error_type="memory", error_message=f"memory limit of {limits.memory} bytes exceeded")
    except lua54.LuaError as exc:
        return Outcome(error_type="runtime", error_message=str(exc))
    finally:
        runtime.set_max_memory(0)
        # The runtime holds the session's callbacks and the session holds the runtime: a cycle through
        # Lua that only a full collection would find. Cut it so the runtime is freed right here.
        session.runtime = None
    if status == "ok":
        return Outcome(value=json.loads(rest[0]))
    kind, message = rest
    return Outcome(error_type=kind, error_message=message)
