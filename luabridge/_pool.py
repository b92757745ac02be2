"""Warm worker processes that run scripts, ask the host to perform their calls, and die at the deadline.

The worker is a Lua VM holding no token: this side performs every integration call it asks for (through
the run's :class:`~luabridge._run_host.RunHost`, with the host's accounts, policy and call log) and answers
over the pipe. The worker enforces every limit itself; the kill is the backstop for what no instruction
hook can stop (one long C call, such as a catastrophic pattern match). A worker is untrusted: whatever it
sends is bounded and checked, and a worker that misbehaves is killed, never the host. A killed or dead
worker is replaced in the background so the next run finds one ready. Workers are forked by the pool's
fork server (``_forkserver.py``), so starting one takes milliseconds.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
import time
from typing import Any

from . import _json
from ._catalog import Catalog
from ._errors import UsageError
from ._forkserver import START_TIMEOUT, ForkServer, WorkerProcess
from ._limits import Limits, with_limit_advice
from ._namespace import target_at
from ._protocol import (
    EXIT_OUT_OF_MEMORY,
    Call,
    Done,
    FrameReader,
    Init,
    Message,
    ProtocolError,
    Ready,
    Reply,
    Run,
    write_frame,
)
from ._result import ERROR_TYPES, MAX_ERROR_MESSAGE, CallRecord, RunError, RunResult
from ._run_host import RunEvents, RunHost

logger = logging.getLogger("luabridge")

# How long after the deadline a worker may take to report before it is killed: the worker's own hook
# stops a script at the deadline, so this only has to cover reporting back.
KILL_GRACE = 0.5
# Polling for the other side's next frame before sleeping (see FrameReader.receive): long enough to catch
# a call answered over loopback (on a VM, waking a sleeping process costs about 100 µs a call), short
# enough that a call to a distant service wastes little. It is only ever spent on a spare core.
SPIN = 0.001
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
# Deaths that mean the worker ran out of memory: its own report, or the abort of Lua or Python failing to
# allocate under the address-space limit.
_OUT_OF_MEMORY = (EXIT_OUT_OF_MEMORY, -signal.SIGABRT, -signal.SIGSEGV)


class _Worker:
    """One worker process, forked by the pool's fork server: its pipes, events file and lifeline."""

    def __init__(self, server: ForkServer) -> None:
        self.events = tempfile.TemporaryFile()
        to_worker, self._to = os.pipe()
        from_worker, theirs_out = os.pipe()
        lifeline, self._lifeline = os.pipe()
        try:
            pid = server.spawn([to_worker, theirs_out, self.events.fileno(), lifeline])
        except BaseException:
            for fd in (self._to, from_worker, self._lifeline):
                os.close(fd)
            self.events.close()
            raise
        finally:
            for fd in (to_worker, theirs_out, lifeline):
                os.close(fd)  # the worker holds these; it sees end of file on its lifeline once we are gone
        self.process = WorkerProcess(pid, server)
        self.reader = FrameReader(from_worker, max_body=1 << 20)
        try:
            ready = self.reader.receive(time.monotonic() + START_TIMEOUT)
        except ProtocolError:
            ready = None
        if not isinstance(ready, Ready):
            self.kill()
            raise UsageError("a luabridge worker process failed to start (its error is on stderr above)")
        self.hardening: dict[str, Any] = ready.hardening

    def send(self, message: Message) -> None:
        write_frame(self._to, message)

    def rewind_events(self) -> None:
        # The worker's descriptor shares this one's offset: both go back to the start.
        os.ftruncate(self.events.fileno(), 0)
        os.lseek(self.events.fileno(), 0, os.SEEK_SET)

    def output(self, limit: int) -> str:
        """What the current run printed (at most ``limit`` bytes of it, whatever the worker wrote); nothing
        once the pool has closed the events file (the bridge was closed while this run was busy)."""
        try:
            data = os.pread(self.events.fileno(), limit, 0)
        except (ValueError, OSError):
            return ""
        return data.decode("utf-8", "replace")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.events.close()
        for fd in (self._lifeline, self._to, self.reader.fd):
            try:
                os.close(fd)
            except OSError:
                pass


class WorkerPool:
    """Runs scripts in warm worker processes, at most ``max_workers`` at once, for one catalog."""

    def __init__(self, catalog: Catalog, init: Init, *, max_workers: int = 8, warm: int = 1) -> None:
        self._catalog = catalog
        self._targets: dict[str, int] = {}  # Lua path -> target id, for paths already resolved
        self._init = init
        self._server: ForkServer | None = None
        self._server_lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_workers)
        self._warm = warm
        self._closed = False

    def prestart(self, count: int) -> None:
        """Start idle workers until ``count`` are waiting, so the next runs do not wait for one.

        Counted again before each start, so concurrent calls (or a replacement started meanwhile) top up
        to ``count`` together instead of each adding its own."""
        while True:
            with self._lock:
                if len(self._idle) >= count:
                    return
            worker = _Worker(self._fork_server())
            with self._lock:
                if not self._closed:
                    self._idle.append(worker)
                    continue
            worker.kill()  # the pool closed while it started
            return

    def _fork_server(self) -> ForkServer:
        """The fork server workers come from; started on first use, and again if it died."""
        with self._server_lock:
            if self._closed:
                raise UsageError("this bridge is closed; create a new one to run scripts")
            if self._server is None or not self._server.alive:
                if self._server is not None:
                    self._server.close()
                self._server = ForkServer(self._init)
            return self._server

    def _take(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise UsageError("this bridge is closed; create a new one to run scripts")
            while self._idle:
                worker = self._idle.pop()
                if worker.process.poll() is None:
                    self._busy.add(worker)
                    return worker
        worker = _Worker(self._fork_server())
        with self._lock:
            self._busy.add(worker)
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            if not self._closed:
                self._idle.append(worker)
                return
        worker.kill()

    def _retire(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
        worker.kill()
        self._replace_in_background()

    def _replace_in_background(self) -> None:
        def start() -> None:
            with self._lock:
                if self._closed or len(self._idle) >= self._warm:
                    return
            try:
                self._give_back(_Worker(self._fork_server()))
            except Exception:
                logger.exception("could not start a replacement worker")

        threading.Thread(target=start, daemon=True).start()

    def run(self, code: str, *, limits: Limits, events: RunEvents, started: float) -> RunResult:
        """Run ``code`` in a worker, performing the calls it asks for as ``events`` plans (its permissions,
        dry run and replay) and logging them there; kill it if it has not answered shortly after the
        deadline, or as soon as it breaks the protocol."""
        with self._slots:
            worker = self._take()
            # Counted from now, not from `started`: starting a worker may have taken a while.
            deadline = time.monotonic() + limits.timeout
            host = RunHost(self._catalog, limits=limits, permissions=events.permissions, events=events,
                           deadline=deadline)
            worker.reader.max_body = max(limits.result, limits.memory) + (1 << 20)
            done: Done | None = None
            broken: str | None = None
            try:
                worker.rewind_events()
                worker.send(Run(limits=limits.to_dict(), spin=self._spin(), seed=events.plan.seed,
                                clock=events.plan.clock, body=code.encode("utf-8")))
                while True:
                    message = worker.reader.receive(deadline + KILL_GRACE, spin=self._spin())
                    if message is None or isinstance(message, Done):
                        done = message
                        break
                    if not isinstance(message, Call):
                        raise ProtocolError(f"an unexpected {message.kind!r} message during a run")
                    reply = self._perform(host, message)
                    reply.spin = self._spin()
                    worker.send(reply)
            except ProtocolError as exc:
                broken = str(exc)
            except OSError:
                logger.exception("lost contact with a worker")
            output = worker.output(limits.output)
            if done is not None:
                self._give_back(worker)
                return _finished(done, output, events.calls, started)
            timed_out = time.monotonic() >= deadline + KILL_GRACE
            self._retire(worker)
            error = _death(worker.process.returncode, timed_out, broken, limits)
            return RunResult(output=output, error=error, calls=events.calls,
                             duration_ms=(time.monotonic() - started) * 1000)

    def _spin(self) -> float:
        """How long a waiting side may poll before sleeping: only while every busy run's host thread and
        worker can each have a core, so that polling never takes time from work."""
        return SPIN if len(self._busy) * 2 <= CORES else 0.0

    def _perform(self, host: RunHost, call: Call) -> Reply:
        """Perform one call a worker asked for, as the run's host; the worker's view is not trusted."""
        target = self._targets.get(call.path)
        if target is None:
            target = target_at(self._catalog, call.path)
            if target is None:
                raise ProtocolError("a call to a function that does not exist")
            self._targets[call.path] = target  # only real functions: as many entries as the catalog has
        args = call.body.decode("utf-8", "replace") if call.body else None
        reply = host.call(target, call.nargs, args, bool(call.colon), call.encode_error, float(call.room))
        if reply[0] == "ok":
            return Reply(status="ok", body=reply[1], cost=reply[2], fixups=reply[3])
        function, account, http_status, code = (*reply[3:7], None, None, None, None)[:4]
        return Reply(status=reply[0], error_type=reply[1], message=reply[2], function=function, account=account,
                     http_status=http_status, code=code)

    def close(self) -> None:
        """Stop every worker, idle or busy: nothing a bridge started outlives it."""
        with self._lock:
            self._closed = True
            workers, self._idle = [*self._idle, *self._busy], []
            self._busy = set()
        for worker in workers:
            worker.kill()
        with self._server_lock:
            if self._server is not None:
                self._server.close()
                self._server = None


def _finished(done: Done, output: str, calls: list[CallRecord], started: float) -> RunResult:
    """The result of a run the worker reported; its words are checked, not trusted."""
    duration_ms = (time.monotonic() - started) * 1000
    if done.error_type is None:
        try:
            value = _json.loads(done.body)
        except _json.JSONError:
            return RunResult(output=output, calls=calls, duration_ms=duration_ms,
                             error=RunError("runtime", "the worker sent a returned value that is not JSON"))
        return RunResult(value=value, output=output, calls=calls, duration_ms=duration_ms)
    kind = done.error_type if done.error_type in ERROR_TYPES else "runtime"
    message = _json.repair_text(str(done.message or ""))[:MAX_ERROR_MESSAGE]
    return RunResult(output=output, error=RunError(kind, message), calls=calls, duration_ms=duration_ms)


def _death(status: int | None, timed_out: bool, broken: str | None, limits: Limits) -> RunError:
    if timed_out:
        return RunError("timeout", with_limit_advice(
            "timeout", f"time limit of {limits.timeout:g} s exceeded (the run was stopped)", limits))
    if broken is not None:
        return RunError("runtime", f"the worker process broke the protocol ({broken}) and was stopped")
    if status in _OUT_OF_MEMORY:
        return RunError("memory", with_limit_advice("memory", f"memory limit of {limits.memory} bytes exceeded "
                        "(the worker process ran out of memory under its address-space limit and was stopped)",
                        limits))
    return RunError("runtime", f"the worker process died unexpectedly (exit status {status})")
