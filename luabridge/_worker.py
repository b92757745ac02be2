"""The worker process: runs scripts for a host that can kill it at the deadline.

Started as ``python -m luabridge._worker`` with a minimal environment. Everything it needs, credentials
included, arrives over its standard input, never through its command line or environment. Protocol: one
JSON object per line each way.

    host -> worker   {"op": "init", "sys_path": [...], "integrations": [...], "accounts": {...}, "events_fd": N}
                     {"op": "run", "code": "...", "limits": {...}, "permissions": {...}}
                     {"op": "answer", "allow": true}          (reply to an "ask" event)
    worker -> host   {"ev": "ready"}
                     {"ev": "ask", "request": {...}}
                     {"ev": "done", "result": {...}}          (RunResult.to_json())

As the run goes, the worker also writes its output and call log to the events file (``events_fd``, passed
by the host), one JSON object per line: {"ev": "output"}, {"ev": "call"}, {"ev": "call_end"}. The host
reads that file only when it kills a run, so a killed run keeps what it printed and every call it started,
and a run that finishes never wakes the host before "done".
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any

from ._calls import RunEvents
from ._permissions import PermissionRequest, Permissions
from ._protocol import decode_message, encode_message
from ._result import CallRecord


class _StreamingEvents(RunEvents):
    """Run events also written, as they happen, to the run's event file, which the host reads only when it
    kills the run: a killed run keeps its log and output, and a run that finishes never wakes the host."""

    def __init__(self, permissions: Permissions, channel: _Channel, events_fd: int) -> None:
        super().__init__(permissions)
        self.channel = channel
        self.events_fd = events_fd

    def _log(self, message: dict[str, Any]) -> None:
        os.write(self.events_fd, encode_message(message))

    def printed(self, text: str) -> None:
        super().printed(text)
        self._log({"ev": "output", "text": text})

    def call_started(self, record: CallRecord) -> None:
        super().call_started(record)
        self._log({"ev": "call", "record": record.to_json()})

    def call_finished(self, record: CallRecord) -> None:
        self._log({"ev": "call_end", "index": self.calls.index(record), "record": record.to_json()})

    def ask(self, request: PermissionRequest) -> bool:
        self.channel.send({"ev": "ask", "request": {
            "function": request.function, "account": request.account,
            "operation": request.operation, "args": dict(request.args),
        }})
        answer = self.channel.receive()
        return bool(answer and answer.get("op") == "answer" and answer.get("allow"))


class _Channel:
    def __init__(self, reader: IO[bytes], writer: IO[bytes]) -> None:
        self.reader, self.writer = reader, writer

    def send(self, message: dict[str, Any]) -> None:
        self.writer.write(encode_message(message))
        self.writer.flush()

    def receive(self) -> dict[str, Any] | None:
        line = self.reader.readline()
        return decode_message(line) if line else None


def _serve(channel: _Channel) -> None:
    # Imported here so that a failing import is reported by the host as the worker's death, with stderr.
    from ._bridge import execute_run
    from ._catalog import Catalog
    from ._limits import Limits
    from ._registry import Account, Secret, load_integration

    init = channel.receive()
    if not init or init.get("op") != "init":
        return
    sys.path[:] = init["sys_path"]
    integrations = [load_integration(module) for module in init["integrations"]]
    accounts = {
        name: {
            alias: Account(name, alias, entry["url"], Secret(entry["token"]) if entry["token"] is not None else None)
            for alias, entry in aliases.items()
        }
        for name, aliases in init["accounts"].items()
    }
    catalog = Catalog(integrations, accounts)
    channel.send({"ev": "ready"})
    while (request := channel.receive()) is not None:
        if request.get("op") != "run":
            continue
        started = time.monotonic()
        permissions = Permissions(**request["permissions"], ask=lambda _request: False)
        events = _StreamingEvents(permissions, channel, init["events_fd"])
        result = execute_run(
            catalog, request["code"], limits=Limits(**request["limits"]), permissions=permissions,
            events=events, started=started,
        )
        channel.send({"ev": "done", "result": result.to_json()})


def main() -> None:
    # The protocol keeps the real stdout; anything else printing to fd 1 lands on stderr instead.
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    try:
        _serve(_Channel(sys.stdin.buffer, protocol_out))
    except BrokenPipeError:
        # The host went away (it exited, or gave up on this worker): nothing left to report to.
        os._exit(0)


if __name__ == "__main__":
    main()
