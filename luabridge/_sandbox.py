"""One run of one script in a fresh, sandboxed Lua 5.4 runtime, in this process.

The kernel (``_kernel.lua``) builds the script's world; this module creates the runtime, hands the kernel
its host callbacks, and turns what comes back into an :class:`Outcome`. The guarantee that no Python
object reaches a script is the kernel's (it calls every callback through a protected call and checks the
reply); this side adds that every reply is data: a callback never raises on purpose, values arrive as JSON
bytes and are converted only after their cost has been checked against what is left of the memory limit,
and the runtime refuses attribute and item access on any Python object.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

import lupa.lua54 as lua54  # Lua 5.4 explicitly: plain `import lupa` picks the newest Lua

from . import _json
from ._limits import DEFAULT_LIMITS, Limits, with_limit_advice
from ._values import BudgetExceeded, to_lua

logger = logging.getLogger("luabridge")


def _source(name: str) -> str:
    return resources.files("luabridge").joinpath(name).read_text(encoding="utf-8")


# The allocator's hard limit sits this far above the run's memory limit, so that a script growing past
# its limit is stopped by the kernel's hook (uncatchably) before an allocation fails (which Lua reports as
# an ordinary error a `__close` handler could replace).
MEMORY_SLACK = 1 / 4
MIN_MEMORY_SLACK = 1024 * 1024


_CONTAINERS = (dict, list)

# Values lupa pushes onto Lua's stack without allocating: nil, numbers, booleans and tables already in Lua
# (lupa does not export its table type).
_HANDED_OVER_FREELY = frozenset({bool, int, float, type(None), type(lua54.LuaRuntime(register_eval=False).table())})


def _precompile(source: str) -> bytes:
    """The kernel as Lua 5.4 bytecode, compiled once per process: each run loads it without parsing it."""
    compiler = lua54.LuaRuntime(encoding=None, register_eval=False, register_builtins=False)
    dump = compiler.eval("function(source) return string.dump(assert(load(source, '=kernel', 't')), true) end")
    return dump(source.encode("utf-8"))


KERNEL_CHUNK = _precompile(_source("_kernel.lua"))
# The kernel's parts, in the order the kernel receives them after its callbacks: each is loaded only by a
# run that needs it (see _kernel.lua).
KERNEL_PARTS = tuple(_precompile(_source(f"_kernel_{name}.lua")) for name in ("json", "errors", "library"))


@dataclass(frozen=True)
class Outcome:
    """How a run ended: ``value_json`` is the returned value as JSON text when ``error_type`` is ``None``."""

    value_json: str = "null"
    error_type: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_type is None

    @property
    def value(self) -> Any:
        return _json.loads(self.value_json) if self.ok else None


class Host(Protocol):
    """What a run asks of its host. Each method returns a kernel reply (see ``_kernel.lua``):
    ``("ok", payload)``, ``("error", kind, message)`` or ``("trip", kind, message)``, and for ``resolve``
    also ``("namespace", path)`` or ``("function", id)``. A ``call`` payload is JSON bytes; the docs'
    payloads are plain strings, lists and dicts of strings. ``room`` is the bytes of Lua memory left."""

    def resolve(self, path: str, key: str) -> tuple: ...

    def call(
        self, target: int, nargs: int, args: Any, colon: bool, encode_error: str | None, room: float
    ) -> tuple: ...

    def read_doc(self, page: str | None = None) -> tuple: ...

    def list_docs(self, prefix: str | None = None) -> tuple: ...

    def search_docs(self, query: str | None = None) -> tuple: ...

    def output(self, text: str) -> None: ...


# How a script's error names the host operation that failed.
_OPERATION_NAMES = {"resolve": "name resolution", "call": "an integration call", "json_decode": "json.decode"}


def _internal_error(operation: str) -> tuple:
    where = _OPERATION_NAMES.get(operation, operation)
    logger.exception("internal error in %s", where)
    return ("error", "runtime", f"internal error in {where} (a bug in the host, logged there)")


def _refuse_attribute(obj: Any, name: Any, *value: Any) -> None:
    raise AttributeError("host objects cannot be used from scripts")


def _what(operation: str) -> str:
    return "json.decode: the decoded value" if operation == "json_decode" else "the answer"


def too_big(what: str, cost: int, room: float, limit: int) -> tuple:
    """The kernel reply for a value that would take the run past its memory limit."""
    return ("trip", "memory", f"{what} would take about {cost} bytes of Lua memory, more than the "
            f"{max(0, int(room))} bytes left under the memory limit of {limit} bytes")


class _Session:
    """The state of one run: the runtime, its memory limits, and the callbacks the kernel calls."""

    def __init__(self, host: Host | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        if host is not None:
            self.attach(host, limits)
        self.runtime = lua54.LuaRuntime(
            register_eval=False, register_builtins=False, unpack_returned_tuples=True, max_memory=0,
            attribute_handlers=(_refuse_attribute, _refuse_attribute),
        )
        self.hard_limit = 0  # the allocator's limit while the script runs (0: none, before it is armed)

    def attach(self, host: Host, limits: Limits) -> None:
        """Serve ``host``'s run under ``limits`` (a runtime is built before its run, see PreparedRun)."""
        self.host_object = host
        self.limits = limits
        self.operations: dict[str, Callable[..., tuple]] = {
            "resolve": host.resolve, "call": self.call, "json_decode": self.json_decode,
            "lua_read_doc": host.read_doc, "lua_list_docs": host.list_docs, "lua_search_docs": host.search_docs,
            "part_loaded": self.part_loaded,
        }
        self.soft_total = float("inf")  # Lua's total bytes past which the run is over its limit

    def reply(self, operation: str, reply: tuple) -> tuple:
        """Turn a host reply's payload into Lua values (the memory limit is lifted around this call)."""
        status = reply[0]
        if status == "ok":
            payload = reply[1]
            if isinstance(payload, (bytes, bytearray)):
                return self.convert(operation, payload, *reply[2:4])
            return ("ok", *to_lua(self.runtime, payload))
        if status in ("error", "trip"):
            # An error's facts after its words: function, account (text), HTTP status and code.
            facts = tuple(_json.repair_text(v) if isinstance(v, str) else v for v in reply[3:7])
            return (status, reply[1], _json.repair_text(reply[2]), *facts)
        return reply

    def convert(
        self, operation: str, data: bytes | bytearray, cost: int | None = None, fixups: bool | None = None,
        room: float | None = None,
    ) -> tuple:
        """JSON ``data`` into Lua tables, refused before anything is built when it cannot fit. ``cost``
        and ``fixups`` are the host's measure of an answer (it encoded it, see ``_json.measure``), and
        ``room`` the bytes left when the call began (the host's conversions are not counted against it); a
        ``bytearray`` (an answer off the worker's pipe) is emptied once decoded, to free it early."""
        if room is None:
            room = self.soft_total - self.runtime.get_memory_used(total=True)
        if cost is None or fixups is None:
            cost, fixups = _json.measure(data, room)
        # A script's own text may be JSON with spaces, which the measure's fix-up test does not read.
        fixups = fixups or operation == "json_decode"
        if cost > room:
            return too_big(_what(operation), cost, room, self.limits.memory)
        try:
            value = _json.loads(data)
            if isinstance(data, bytearray):
                data.clear()
            if not fixups and type(value) in _CONTAINERS:  # the usual answer: one conversion, in C
                converted = (self.runtime.table_from(value, recursive=True),)
            else:
                converted = to_lua(self.runtime, value, room - cost, fixups=fixups)
            del value
        except _json.JSONError as exc:
            if operation != "json_decode":
                raise
            return ("error", "runtime", f"json.decode: invalid JSON: {exc}")
        except BudgetExceeded:
            return too_big(_what(operation), cost, room, self.limits.memory)
        if self.runtime.get_memory_used(total=True) > self.soft_total:
            return too_big(_what(operation), cost, room, self.limits.memory)
        return ("ok", *converted)

    def host(self, operation: str, *args: Any) -> tuple:
        """The kernel's one door to the host: never raises, and lifts the memory limit until the reply is
        converted (the kernel puts it back with ``memory_on`` after a reply that holds strings)."""
        return self._answer(operation, self.operations[operation], args)

    def flat_call(self, target: int, *pairs: Any) -> tuple:
        """The usual integration call, straight from the kernel: its one argument, a flat table of string
        keys (valid UTF-8) and scalar values the kernel checked, arrives as keys and values in turn."""
        runtime = self.runtime
        room = self.soft_total - runtime.get_memory_used(True)  # what the answer may take
        runtime.set_max_memory(0)
        try:
            args = {pairs[0]: pairs[1]} if len(pairs) == 2 else dict(zip(pairs[::2], pairs[1::2], strict=True))
            reply = self.host_object.call(target, 1, args, False, None, room)
            if reply[0] == "ok":  # JSON bytes with the host's measure of them (see RunHost.call)
                reply = self.convert("call", reply[1], reply[2], reply[3], room)
            else:
                reply = self.reply("call", reply)
        except Exception:
            return _internal_error("call")
        return self._restored(reply)

    def _answer(self, operation: str, handler: Callable[..., tuple], args: tuple) -> tuple:
        self.runtime.set_max_memory(0)
        try:
            reply = self.reply(operation, handler(*args))
        except Exception:
            return _internal_error(operation)
        return self._restored(reply)

    def _restored(self, reply: tuple) -> tuple:
        """``reply``, with the memory limit put back first when lupa hands its values to Lua without
        allocating: an answer of at most three values, as the kernel tests it (see with_host in
        _kernel.lua), which restores the limit after any other reply."""
        if reply[0] == "ok" and len(reply) <= 4 and _HANDED_OVER_FREELY.issuperset(map(type, reply[1:])):
            self.runtime.set_max_memory(self.hard_limit)
        return reply

    def call(self, target: int, nargs: int, args: str | None, colon: bool, encode_error: str | None,
             room: float) -> tuple:
        """An integration call that is not the usual one (see ``flat_call``): ``args`` is JSON text or
        ``None``."""
        return self.host_object.call(target, nargs, args, colon, encode_error, room)

    def json_decode(self, text: str) -> tuple:
        return ("ok", text.encode("utf-8"))

    def part_loaded(self, size: float) -> tuple:
        """The kernel loaded one of its parts, ``size`` bytes: like the kernel, not the script's memory."""
        self.soft_total += size
        self.hard_limit += int(size)
        return ("ok", None)

    def memory_on(self) -> None:
        self.runtime.set_max_memory(self.hard_limit)

    def output(self, text: str) -> None:
        try:
            self.host_object.output(text)
        except Exception:
            logger.exception("internal error while capturing output")

    def kernel_arguments(self) -> tuple:
        """What the kernel receives when it loads, in its order: as few Python callables as it needs (each
        costs start-up time), then its parts. Each callable goes wrapped: lupa then skips asking it for a
        ``__getitem__`` (a failed hasattr, an exception built and dropped, per callable and run); how an
        object would be indexed does not matter, since the kernel makes every one inert but to call."""
        wrap = lua54.as_attrgetter
        return (wrap(time.monotonic), wrap(self.output), wrap(self.memory_on), wrap(self.host), wrap(self.flat_call),
                *KERNEL_PARTS)


class PreparedRun:
    """A fresh sandboxed runtime with its kernel loaded, waiting for the one script it will run.

    Loading the kernel is most of what starting a run costs; a worker prepares its next run while it
    waits for a script, so that a run pays only for its own script. A prepared run is used once.
    """

    def __init__(self) -> None:
        self._session: _Session | None = _Session()
        self._compile, self._run, self._clear_hook, self._limit_reached = self._session.runtime.execute(
            KERNEL_CHUNK, *self._session.kernel_arguments(), name="=kernel", mode="b")

    def run(self, code: str, *, host: Host, limits: Limits, deadline: float, seed: int | None = None,
            clock: float | None = None) -> Outcome:
        """Run ``code``, as :func:`run_script` describes; raises :class:`RuntimeError` on a second call."""
        session, self._session = self._session, None
        if session is None:
            raise RuntimeError("a prepared run runs one script")
        session.attach(host, limits)
        if len(code) > limits.memory:
            return Outcome(error_type="memory", error_message=with_limit_advice("memory", (
                f"the script is {len(code)} characters long, more than the memory limit of {limits.memory} "
                "bytes"), limits))
        runtime = session.runtime
        try:
            chunk, syntax_error = self._compile(code)
            if chunk is None:
                return Outcome(error_type="syntax", error_message=syntax_error)
            # The limit counts from here: the kernel and the compiled script are the run's baseline.
            used = runtime.get_memory_used()
            session.soft_total = runtime.get_memory_used(total=True) + limits.memory
            session.hard_limit = used + limits.memory + max(int(limits.memory * MEMORY_SLACK), MIN_MEMORY_SLACK)
            session.memory_on()
            # The run's settings, plain numbers: its randomness and clock are replayable (a random seed and
            # now, unless the run resumes one that paused).
            status, *rest = self._run(
                chunk, session.soft_total / 1024, deadline, limits.timeout, limits.instructions, limits.memory,
                limits.output, limits.result, secrets.randbits(62) if seed is None else seed,
                time.time() if clock is None else clock)
        except lua54.LuaMemoryError:
            return Outcome(error_type="memory", error_message=with_limit_advice(
                "memory", f"memory limit of {limits.memory} bytes exceeded", limits))
        except lua54.LuaError as exc:
            runtime.set_max_memory(0)
            self._clear_hook()
            reached = self._limit_reached()  # (kind, message), or None
            if not isinstance(reached, tuple):
                return Outcome(error_type="runtime", error_message=_json.repair_text(str(exc)))
            status, rest = "limit", list(reached)
        finally:
            runtime.set_max_memory(0)
            # The runtime holds the session's callbacks and the session holds the runtime: a cycle through
            # Lua that only a full collection would find. Cut it so the runtime is freed right here.
            session.runtime = None
            self._compile = self._run = self._clear_hook = self._limit_reached = None
        if status == "ok":
            return Outcome(value_json=rest[0])
        kind, message = rest
        if status == "limit":
            elapsed = limits.timeout - (deadline - time.monotonic())
            message = with_limit_advice(kind, message, limits, elapsed=elapsed)
        return Outcome(error_type=kind, error_message=message)


def run_script(
    code: str, *, host: Host, limits: Limits, deadline: float, seed: int | None = None, clock: float | None = None
) -> Outcome:
    """Run ``code`` in a fresh sandboxed runtime and say how it ended.

    ``deadline`` is the ``time.monotonic()`` value at which the run stops with a ``timeout`` error.
    ``seed`` seeds ``math.random`` and ``clock`` is the Unix time ``os.time()`` and ``os.date()`` report
    (default: a random seed and now); a resumed run passes the paused run's.
    In this process the time limit is checked between Lua instructions only: one long C call (a
    catastrophic pattern match) can outlive it. The worker process makes it hard.
    """
    return PreparedRun().run(code, host=host, limits=limits, deadline=deadline, seed=seed, clock=clock)

