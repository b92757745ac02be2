"""The messages between the host and its worker processes, and how they are framed on the pipes.

A frame is one line of JSON (the header: a message's ``type`` and small fields) followed by ``body``
bytes when the header says so (code, arguments, answers and values: JSON or text that is never escaped
twice). Both sides read with :class:`FrameReader`, which bounds every frame: the host treats a worker as
untrusted, so a frame that is too large or malformed ends that worker, never the host.

    host -> worker   Init, Run (body: the script), Reply (body: the answer's JSON)
    worker -> host   Ready, Call (body: the arguments), Done (body: the returned value's JSON)
"""

from __future__ import annotations

import os
import select
import time
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from . import _json

MAX_HEADER = 256 * 1024
EXIT_OUT_OF_MEMORY = 3  # a worker's exit status when Python ran out of memory; the host reports it as such


class ProtocolError(Exception):
    """Raised when the other side sent a frame that is not a valid message, or one over its bounds."""


@dataclass
class Message:
    """Base of the messages; ``body`` travels after the header, not inside it."""

    kind: ClassVar[str] = ""
    body: bytes | bytearray = field(default=b"", repr=False)  # as received: a bytearray

    def header(self) -> bytes:
        """The frame's first line; the body follows it."""
        # Every field but the body is a plain value or a shallow list or dict: no deep copy is needed.
        header = {"type": self.kind, **{name: getattr(self, name) for name in self._header_fields()}}
        header["body"] = len(self.body)
        # One line: JSON never holds a raw newline (orjson escapes control characters).
        return _json.dumps(header) + b"\n"

    @classmethod
    def _header_fields(cls) -> tuple[str, ...]:
        names = cls.__dict__.get("_names")
        if names is None:
            names = tuple(f.name for f in fields(cls) if f.name != "body")
            cls._names = names
        return names


@dataclass
class Init(Message):
    """The fork server's set-up: where to import from, which integrations, and the account aliases (no
    tokens: a worker never holds one); ``control_fd`` is its end of the control socket."""

    kind: ClassVar[str] = "init"
    sys_path: list[str] = field(default_factory=list)
    integrations: list[str] = field(default_factory=list)
    aliases: dict[str, list[str]] = field(default_factory=dict)
    control_fd: int = -1


@dataclass
class Ready(Message):
    kind: ClassVar[str] = "ready"
    hardening: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run(Message):
    """Run the script in ``body`` (UTF-8) under ``limits``, with the run's ``seed`` for ``math.random`` and its
    ``clock`` (Unix time) for ``os.time()``: replayable, see ``_ledger.RunPlan``."""

    kind: ClassVar[str] = "run"
    limits: dict[str, float] = field(default_factory=dict)
    spin: float = 0.0  # seconds the worker may poll for each reply before sleeping (see FrameReader)
    seed: int = 0
    clock: float = 0.0


@dataclass
class Call(Message):
    """An integration call the script made, for the host to perform: the function's Lua ``path`` and the
    kernel's view of the call (see :meth:`luabridge._run_host.RunHost.call`); ``body`` is the arguments as
    JSON, empty for none."""

    kind: ClassVar[str] = "call"
    path: str = ""
    nargs: int = 0
    colon: bool = False
    encode_error: str | None = None
    room: float = 0.0


@dataclass
class Reply(Message):
    """The host's kernel reply to a :class:`Call`: ``status`` ``ok`` (``body`` is the answer's JSON),
    ``error`` or ``trip`` (with the error's ``error_type`` and ``message``, and for ``error`` its facts:
    the ``function`` and ``account`` of the call, the ``http_status`` and the service's ``code``)."""

    kind: ClassVar[str] = "reply"
    status: str = "ok"
    error_type: str | None = None
    message: str | None = None
    function: str | None = None
    account: str | None = None
    http_status: int | None = None
    code: str | int | None = None
    cost: int = 0  # with ``ok``: the answer's Lua cost, as the host measured it (see _json.measure)
    fixups: bool = True  # with ``ok``: whether the answer may need the kernel's fix-ups (same)
    spin: float = 0.0  # as in Run, for the worker's wait on the next reply


@dataclass
class Done(Message):
    """How the run ended: ``error_type`` is ``None`` when it succeeded, and ``body`` is the returned value
    as JSON. Output is not here: the worker writes it to the events file as it goes."""

    kind: ClassVar[str] = "done"
    error_type: str | None = None
    message: str | None = None


MESSAGES: dict[str, type[Message]] = {cls.kind: cls for cls in (Init, Ready, Run, Call, Reply, Done)}


def _header(header: bytes) -> dict[str, Any]:
    try:
        data = _json.loads(header)
    except _json.JSONError:
        data = None
    if not isinstance(data, dict) or type(data.get("body")) is not int:
        raise ProtocolError("malformed message header")
    return data


def _build(data: dict[str, Any], body: bytearray) -> Message:
    try:
        cls = MESSAGES[data.pop("type")]
        data.pop("body")
        return cls(body=body, **data)
    except (KeyError, TypeError) as exc:
        raise ProtocolError(f"malformed message ({type(exc).__name__})") from None


class FrameReader:
    """Reads frames from a file descriptor, each within ``max_body`` bytes, optionally by a deadline."""

    def __init__(self, fd: int, *, max_body: int) -> None:
        self.fd = fd
        self.max_body = max_body
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer already searched for the end of the header

    def receive(self, deadline: float | None = None, *, spin: float = 0.0) -> Message | None:
        """The next message, or ``None`` when the deadline passes or the other side closed the pipe.

        With ``spin`` (seconds), first poll for that long before sleeping: an answer expected within
        microseconds then costs no scheduler wake-up (about 60 µs a round trip on a small VM, 5 µs spinning).
        """
        while (end := self._buffer.find(b"\n", self._scanned)) < 0:
            self._scanned = len(self._buffer)
            if self._scanned > MAX_HEADER:
                raise ProtocolError(f"a message header longer than {MAX_HEADER} bytes")
            if not self._fill(deadline, spin):
                return None
        data = _header(bytes(self._buffer[:end]))
        size = data["body"]
        if not 0 <= size <= self.max_body:
            raise ProtocolError(f"a message body of {size} bytes (at most {self.max_body} are accepted)")
        # The body goes straight into a buffer of its exact size: one copy of it in memory, never two.
        body = bytearray(size)
        have = min(size, len(self._buffer) - end - 1)
        body[:have] = self._buffer[end + 1 : end + 1 + have]
        del self._buffer[: end + 1 + have]
        self._scanned = 0
        with memoryview(body) as rest:
            while have < size:
                if not self._wait(deadline, spin):
                    return None
                got = os.readv(self.fd, [rest[have:]])
                if not got:
                    return None
                have += got
        return _build(data, body)

    def _fill(self, deadline: float | None, spin: float) -> bool:
        if not self._wait(deadline, spin):
            return False
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            return False
        self._buffer += chunk
        return True

    def _wait(self, deadline: float | None, spin: float) -> bool:
        """Whether there is something to read (or end of file) before ``deadline``."""
        if spin > 0 and self._poll(spin):
            return True
        if deadline is None:
            return True  # the read blocks until the other side writes or closes
        remaining = deadline - time.monotonic()
        return remaining > 0 and bool(select.select([self.fd], [], [], remaining)[0])

    def _poll(self, spin: float) -> bool:
        until = time.perf_counter() + spin
        while time.perf_counter() < until:
            if select.select([self.fd], [], [], 0)[0]:
                return True
            os.sched_yield()  # on a busy machine, the other side may be waiting for this core
        return False


def write_frame(fd: int, message: Message) -> None:
    """Write one whole frame to ``fd``: the header, then the body as it is (not copied behind the header)."""
    parts = [memoryview(message.header()), memoryview(message.body)]
    while parts:
        written = os.writev(fd, parts)
        while parts and written >= len(parts[0]):
            written -= len(parts.pop(0))
        if parts:
            parts[0] = parts[0][written:]
