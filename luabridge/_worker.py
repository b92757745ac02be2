"""Worker processes: Lua VMs that run scripts for a host that can kill them at the deadline.

``python -m luabridge._worker`` starts a fork server with a minimal environment. It loads the
integrations' names and docs, makes one warm-up run, and then forks a worker for each request on its
control socket, which carries the new worker's four descriptors (``socket.send_fds``): its pipe from the
host, its pipe to the host, its events file and its lifeline. Forked from a warmed process, a worker
starts in milliseconds and shares every page it does not write. The fork server reports each worker's
exit status on the control socket, and exits when its standard input (the host) reaches end of file.

A worker holds nothing worth stealing: no account token, no HTTP client, no call log and no policy. It
answers names and docs itself (they are public), and asks the host, over its pipe, to perform every
integration call (see ``_protocol.py``). It hardens itself (``_hardening.py``) before it says it is
ready, so a script that found a way in would find no network, no new processes and no files to open. It
writes the script's output to its events file as it is printed, so that the host still has it when it
kills a run, and it exits when the host goes away: its lifeline reaches end of file.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
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
            return ("ok", reply.body, reply.cost, bool(reply.fixups))
        return (reply.status, reply.error_type, reply.message, reply.function, reply.account, reply.http_status,
                reply.code)

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


def _load(init: Init) -> Any:
    """Import the integrations and build the names and docs a run can reach (no tokens: none are sent)."""
    from ._catalog import Catalog
    from ._registry import Account, load_integration
    from ._run_host import ScriptHost

    sys.path[:] = init.sys_path
    integrations = [load_integration(module) for module in init.integrations]
    by_name = {integration.name: integration for integration in integrations}
    accounts = {
        name: {alias: Account(name, alias, by_name[name].accounts.default_url) for alias in aliases}
        for name, aliases in init.aliases.items()
    }
    return ScriptHost(Catalog(integrations, accounts))


def _serve_runs(names: Any, fds: list[int]) -> None:
    """A forked worker: harden, say Ready, then run each script the host sends until it goes away."""
    from ._hardening import harden, limit_address_space
    from ._limits import Limits
    from ._sandbox import PreparedRun

    to_worker, from_worker, events_fd, lifeline_fd = fds
    _watch_lifeline(lifeline_fd)
    reader = FrameReader(to_worker, max_body=MAX_FRAME)
    host = _ForwardingHost(names, reader, from_worker, events_fd)
    report = harden(keep_fds=(*fds, 2))
    write_frame(from_worker, Ready(hardening=report))
    # Each run's runtime is built while the worker waits for the script: a warm run pays only for its own.
    prepared = PreparedRun()
    while (request := reader.receive()) is not None:
        if not isinstance(request, Run):
            continue
        limits = Limits(**request.limits)
        limit_address_space(limits.memory)
        deadline = time.monotonic() + limits.timeout
        host.spin = request.spin
        outcome = prepared.run(request.body.decode("utf-8"), host=host, limits=limits, deadline=deadline,
                               seed=int(request.seed), clock=float(request.clock))
        body = outcome.value_json.encode("utf-8") if outcome.ok else b""
        write_frame(from_worker, Done(error_type=outcome.error_type, message=outcome.error_message, body=body))
        prepared = PreparedRun()


def _worker(names: Any, fds: list[int], inherited: list[int]) -> None:
    """The child side of a fork: never returns into the fork server's loop."""
    status = 0
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in inherited:
            os.close(fd)  # the fork server's own pipes and socket are nothing a worker needs
        _serve_runs(names, fds)
    except BrokenPipeError:
        pass  # the host went away (it exited, or gave up on this worker): nothing left to report to
    except MemoryError:
        status = EXIT_OUT_OF_MEMORY
    except BaseException:
        traceback.print_exc()
        status = 1
    os._exit(status)


def _serve_forks(names: Any, control: socket.socket, out_fd: int) -> None:
    """Fork a worker for each request on ``control`` (its four descriptors come with it), and report
    every worker's exit status there, until the host goes away (standard input reaches end of file)."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that the wake-up descriptor is written
    inherited = [0, out_fd, control.fileno(), wake_read, wake_write]
    while True:
        ready, _, _ = select.select([0, control, wake_read], [], [])
        if 0 in ready and not os.read(0, 1 << 16):
            return
        if wake_read in ready:
            os.read(wake_read, 1 << 16)
            _report_exits(control)
        if control in ready:
            message, fds, _, _ = socket.recv_fds(control, 64, 4)
            if not message:
                return
            if len(fds) != 4:
                for fd in fds:
                    os.close(fd)
                continue
            pid = os.fork()
            if pid == 0:
                _worker(names, fds, inherited)
            for fd in fds:
                os.close(fd)
            control.sendall(f"started {pid}\n".encode())


def _report_exits(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        control.sendall(f"exited {pid} {os.waitstatus_to_exitcode(status)}\n".encode())


def main() -> None:
    # The protocol keeps the real stdout; anything else printing to fd 1 lands on stderr instead.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        init = FrameReader(0, max_body=MAX_FRAME).receive()
        if not isinstance(init, Init):
            os._exit(0)
        from ._limits import Limits
        from ._sandbox import run_script

        names = _load(init)
        # One run before forking, so that everything a run imports or opens lazily is loaded once, here.
        warm = _ForwardingHost(names, FrameReader(0, max_body=0), out_fd, 2)
        run_script("return json.decode('[1]')", host=warm, limits=Limits(), deadline=time.monotonic() + 10)
        gc.collect()
        gc.freeze()  # what is loaded now stays shared with every worker: their collections skip it
        write_frame(out_fd, Ready())
        _serve_forks(names, socket.socket(fileno=init.control_fd), out_fd)
    except BrokenPipeError:
        pass
    except MemoryError:
        os._exit(EXIT_OUT_OF_MEMORY)
    os._exit(0)


if __name__ == "__main__":
    main()
