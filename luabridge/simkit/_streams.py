"""Answers generated while they are sent: padded JSON, gzip bombs, endless lists, and a trickling writer.

None of these holds its whole body in memory, so a simulator can send a 2 GiB answer from a small process.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

# A huge or bombed body is {"padding": "xxx...x"}: valid JSON of any size from these two ends on.
_PADDING_HEAD, _PADDING_TAIL = b'{"padding": "', b'"}'
MIN_SIZE = len(_PADDING_HEAD) + len(_PADDING_TAIL)
_BLOCK = 64 * 1024


def padding(size: int) -> Iterator[bytes]:
    """``{"padding": "xxx...x"}`` of exactly ``size`` bytes (at least :data:`MIN_SIZE`), a block at a time."""
    yield _PADDING_HEAD
    block = b"x" * _BLOCK
    left = size - MIN_SIZE
    while left > 0:
        yield block if left >= _BLOCK else block[:left]
        left -= _BLOCK
    yield _PADDING_TAIL


def gzipped(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """One gzip member of ``pieces``, flushed every 16 pieces so it flows instead of arriving at the end."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for index, piece in enumerate(pieces, 1):
        out = compressor.compress(piece)
        if index % 16 == 0:
            out += compressor.flush(zlib.Z_SYNC_FLUSH)
        if out:
            yield out
    yield compressor.flush()


def endless(name: str, item: Mapping[str, Any]) -> Iterator[bytes]:
    """``{"<name>": [<item>, <item>, ...`` that never ends."""
    yield b"{" + json.dumps(name).encode() + b": ["
    one = json.dumps(item).encode() + b", "
    block = one * max(1, _BLOCK // len(one))
    while True:
        yield block


class Trickle:
    """A writer that sends what it is given one byte every ``delay`` seconds, until ``stopping`` is set.

    Raises :class:`ConnectionAbortedError` from :meth:`write` once ``stopping`` is set.
    """

    def __init__(self, wfile: Any, delay: float, stopping: threading.Event) -> None:
        self._wfile, self._delay, self._stopping = wfile, delay, stopping

    def write(self, data: bytes) -> int:
        for index in range(len(data)):
            if self._stopping.wait(self._delay):
                raise ConnectionAbortedError("the simulator is stopping")
            self._wfile.write(data[index:index + 1])
        return len(data)
