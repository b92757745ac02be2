"""Warm worker processes that the host kills at a run's deadline and replaces.

The worker enforces every limit itself; the kill is the backstop for what no instruction hook can stop
(one long C call, such as a catastrophic pattern match). A killed or dead worker is replaced in the
background so the next run finds one ready.
"""

from __future__ import annotations

import logging
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from ._errors import UsageError
from ._permissions import PermissionRequest, Permissions
from ._protocol import decode_message, encode_message
from ._result import CallRecord, RunError, RunResult

logger = logging.getLogger("luabridge")

# How long after the deadline a worker may take to report before it is killed: the worker's own hook
# stops a script at the deadline, so this only has to cover reporting back.
KILL_GRACE = 0.5
START_TIMEOUT = 60.0
_ENV_PASSED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "SYSTEMROOT", "PYTHONHASHSEED")


def _worker_env() -> dict[str, str]:
    """A minimal environment: the worker gets its credentials over the pipe, never from the environment."""
    env = {name: os.environ[name] for name in _ENV_PASSED if name in os.environ}
    env["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path and os.path.isdir(path))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class _Worker:
    """One worker process and the line reader on its output."""

    def __init__(self, init: dict[str, Any]) -> None:
        self.events = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "luabridge._worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_worker_env(), close_fds=True,
            pass_fds=(self.events.fileno(),),
        )
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.process.stdout, selectors.EVENT_READ)
        self.send({**init, "events_fd": self.events.fileno()})
        ready = self.receive(time.monotonic() + START_TIMEOUT)
        if not ready or ready.get("ev") != "ready":
            self.kill()
            raise UsageError("the luabridge worker process failed to start (its error is on stderr above)")

    def send(self, message: dict[str, Any]) -> None:
        self.process.stdin.write(encode_message(message))
        self.process.stdin.flush()

    def receive(self, deadline: float) -> dict[str, Any] | None:
        """The next message, or ``None`` when the deadline passes or the worker is gone."""
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(remaining):
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return decode_message(line)

    def rewind_events(self) -> None:
        os.ftruncate(self.events.fileno(), 0)
        os.lseek(self.events.fileno(), 0, os.SEEK_SET)

    def logged_events(self) -> list[dict[str, Any]]:
        """The events the worker logged during the current run (read after it was killed)."""
        os.lseek(self.events.fileno(), 0, os.SEEK_SET)
        data = b""
        while chunk := os.read(self.events.fileno(), 1 << 16):
            data += chunk
        return [decode_message(line) for line in data.split(b"\n") if line.strip()]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._selector.close()
        self.events.close()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


class WorkerPool:
    """Runs scripts in warm worker processes, at most ``max_workers`` at once."""

    def __init__(self, init: dict[str, Any], *, max_workers: int = 8, warm: int = 1) -> None:
        self._init = init
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_workers)
        self._warm = warm
        self._closed = False

    def prestart(self, count: int) -> None:
        """Start ``count`` idle workers now, so the next runs do not wait for one."""
        workers = [_Worker(self._init) for _ in range(count)]
        with self._lock:
            self._idle.extend(workers)

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.process.poll() is None:
                    return worker
        return _Worker(self._init)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                return
        worker.kill()

    def _replace_in_background(self) -> None:
        def start() -> None:
            with self._lock:
                if self._closed or len(self._idle) >= self._warm:
                    return
            try:
                self._give_back(_Worker(self._init))
            except Exception:
                logger.exception("could not start a replacement worker")

        threading.Thread(target=start, daemon=True).start()

    def run(self, code: str, *, limits: dict[str, Any], permissions: Permissions, started: float) -> RunResult:
        """Run ``code`` in a worker; kill the worker if it has not answered shortly after the deadline."""
        with self._slots:
            worker = self._take()
            # Counted from now, not from `started`: starting a worker may have taken a while.
            kill_at = time.monotonic() + limits["timeout"] + KILL_GRACE
            output: list[str] = []
            calls: list[CallRecord] = []
            try:
                worker.rewind_events()
                worker.send({"op": "run", "code": code, "limits": limits, "permissions": permissions.to_json()})
                while True:
                    message = worker.receive(kill_at)
                    if message is None:
                        break
                    event = message.get("ev")
                    if event == "done":
                        self._give_back(worker)
                        return RunResult.from_json(message["result"])
                    if event == "ask":
                        worker.send({"op": "answer", "allow": _ask(permissions, message["request"])})
            except (OSError, ValueError):
                logger.exception("lost contact with a worker")
            timed_out = time.monotonic() >= kill_at
            if worker.process.poll() is None:
                worker.process.kill()
            for message in worker.logged_events():
                event = message.get("ev")
                if event == "output":
                    output.append(message["text"])
                elif event == "call":
                    calls.append(CallRecord.from_json(message["record"]))
                elif event == "call_end":
                    calls[message["index"]] = CallRecord.from_json(message["record"])
            worker.kill()
            self._replace_in_background()
            if timed_out:
                error = RunError("timeout", f"time limit of {limits['timeout']:g} s exceeded (the run was stopped)")
            else:
                status = worker.process.returncode
                error = RunError("runtime", f"the worker process died unexpectedly (exit status {status})")
            return RunResult(
                output="".join(output), error=error, calls=calls, duration_ms=(time.monotonic() - started) * 1000
            )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


def _ask(permissions: Permissions, request: dict[str, Any]) -> bool:
    ask: Callable[[PermissionRequest], bool] | None = permissions.ask
    if ask is None:
        return False
    try:
        return bool(ask(PermissionRequest(**request)))
    except Exception:
        logger.exception("the permission callback raised; the call is denied")
        return False
