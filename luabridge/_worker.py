"""The worker process: a Lua VM that runs scripts for a host that can kill it at the deadline.

Started as ``python -m luabridge._worker`` with a minimal environment. It holds nothing worth stealing:
no account token, no HTTP client, no call log and no policy. It answers names and docs itself (they are
public), and asks the host, over its pipe, to perform every integration call (see ``_protocol.py``).
Once set up it hardens itself (``_hardening.py``) before it says it is ready, so a script that found a
way into this process would find no network, no new processes and no files to open.

It writes the script's output to the events file (``events_fd``) as it is printed, so that the host still
has it when it kills a run. It exits when the host goes away: its ``lifeline_fd`` reaches end of file.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from . import _json
from ._protocol import EXIT_OUT_OF_MEMORY, Call, Done, FrameReader, Init, Ready, Reply, Run, write_frame

# What the host may send in one frame: a script or an answer, bounded by the host's own ceilings.
MAX_FRAME = 1 << 31


class _ForwardingHost:
    """The worker's answer to its kernel: names and docs from the local catalog, calls from the host."""

    def __init__(self, names: Any, reader: FrameReader, out_fd: int, events_fd: int) -> None:
        self.names = names
        self.resolve = names.resolve
        self.read_doc = names.read_doc
        self.list_docs = names.list_docs
        self.search_docs = names.search_docs
        self.reader = reader
        self.out_fd = out_fd
        self.events_fd = events_fd
        self.spin = 0.0  # how long to poll for a reply before sleeping; the host sets it per run and call

    def call(self, target: int, nargs: int, args: Any, colon: bool, encode_error: str | None, room: float) -> tuple:
        body = b"" if args is None else args.encode("utf-8") if isinstance(args, str) else _json.dumps(args)
        path = self.names.catalog.target(target).path
        write_frame(self.out_fd, Call(path=path, nargs=nargs, colon=colon, encode_error=encode_error,
                                      room=min(room, 2.0**62), body=body))
        reply = self.reader.receive(spin=self.spin)
        if not isinstance(reply, Reply):
            os._exit(0)  # the host is gone, or broke the protocol: nothing left to run for
        self.spin = reply.spin
        if reply.status == "ok":
            return ("ok", reply.body, reply.cost)
        return (reply.status, reply.error_type, reply.message)

    def output(self, text: str) -> None:
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(self.events_fd, data):]


def _watch_lifeline(fd: int) -> None:
    """End this process when the host's end of the lifeline closes (the host exited or was killed)."""
    def wait() -> None:
        while os.read(fd, 1):
            pass
        os._exit(0)

    threading.Thread(target=wait, name="lifeline", daemon=True).start()


def _serve(reader: FrameReader, out_fd: int) -> None:
    # Imported here so that a failing import is reported by the host as the worker's death, with stderr.
    from ._calls import ScriptHost
    from ._catalog import Catalog
    from ._hardening import harden, limit_address_space
    from ._limits import Limits
    from ._registry import Account, load_integration
    from ._sandbox import run_script

    init = reader.receive()
    if not isinstance(init, Init):
        return
    _watch_lifeline(init.lifeline_fd)
    sys.path[:] = init.sys_path
    integrations = [load_integration(module) for module in init.integrations]
    by_name = {integration.name: integration for integration in integrations}
    accounts = {
        name: {alias: Account(name, alias, by_name[name].accounts.default_url) for alias in aliases}
        for name, aliases in init.aliases.items()
    }
    names = ScriptHost(Catalog(integrations, accounts))
    host = _ForwardingHost(names, reader, out_fd, init.events_fd)
    # One run before hardening, so that everything a run imports or opens lazily is already loaded.
    run_script("return json.decode('[1]')", host=host, limits=Limits(), deadline=time.monotonic() + 10)
    report = harden(keep_fds=(reader.fd, out_fd, init.events_fd, init.lifeline_fd, 2))
    write_frame(out_fd, Ready(hardening=report))
    while (request := reader.receive()) is not None:
        if not isinstance(request, Run):
            continue
        limits = Limits(**request.limits)
        limit_address_space(limits.memory)
        deadline = time.monotonic() + limits.timeout
        host.spin = request.spin
        outcome = run_script(request.body.decode("utf-8"), host=host, limits=limits, deadline=deadline)
        body = outcome.value_json.encode("utf-8") if outcome.ok else b""
        write_frame(out_fd, Done(error_type=outcome.error_type, message=outcome.error_message, body=body))


def main() -> None:
    # The protocol keeps the real stdout; anything else printing to fd 1 lands on stderr instead.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        _serve(FrameReader(sys.stdin.fileno(), max_body=MAX_FRAME), out_fd)
    except BrokenPipeError:
        pass  # the host went away (it exited, or gave up on this worker): nothing left to report to
    except MemoryError:
        os._exit(EXIT_OUT_OF_MEMORY)
    os._exit(0)

if __name__ == "__main__":
    main()
