"""The host's side of the fork server that starts worker processes (see ``_worker.py``).

One fork server per pool: a Python process that has loaded the integrations' names and docs and made a
warm-up run, then forks a worker whenever asked. Asking sends the worker's four descriptors over a Unix
socket; the answer is its pid. The fork server reports each worker's exit status on the same socket, so
the host knows how a worker died (the pool tells a memory death from a crash by it) though the worker is
not its own child. Workers are signalled through a pidfd where the system has them, so a pid reused after
a worker's death can never be hit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace

from ._errors import UsageError
from ._protocol import FrameReader, Init, ProtocolError, Ready, write_frame

START_TIMEOUT = 60.0
_ENV_PASSED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "SYSTEMROOT", "PYTHONHASHSEED")


def _worker_env() -> dict[str, str]:
    """A minimal environment: the workers get nothing secret, from here or anywhere."""
    env = {name: os.environ[name] for name in _ENV_PASSED if name in os.environ}
    env["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path and os.path.isdir(path))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class ForkServer:
    """A started fork server; :meth:`spawn` gives a new worker's pid, :meth:`wait` its exit status."""

    def __init__(self, init: Init) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "luabridge._worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_worker_env(), close_fds=True,
                pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs_fd = theirs.fileno()
            theirs.close()
        self._control = ours
        self._spawning = threading.Lock()  # one request at a time: answers come back in order
        self._changed = threading.Condition()
        self._started: list[int] = []
        self._exits: dict[int, int] = {}
        try:
            write_frame(self.process.stdin.fileno(), replace(init, control_fd=theirs_fd))
            ready = FrameReader(self.process.stdout.fileno(), max_body=1 << 20).receive(
                time.monotonic() + START_TIMEOUT)
        except (OSError, ProtocolError):
            ready = None
        if not isinstance(ready, Ready):
            self.close()
            raise UsageError("the luabridge worker process failed to start (its error is on stderr above)")
        threading.Thread(target=self._listen, name="luabridge-forkserver", daemon=True).start()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def spawn(self, fds: list[int]) -> int:
        """Fork a worker holding ``fds`` (its pipe in, its pipe out, its events file, its lifeline)."""
        with self._spawning:
            try:
                socket.send_fds(self._control, [b"spawn"], fds)
            except OSError as exc:
                raise UsageError(f"the luabridge fork server is gone ({exc.strerror})") from None
            with self._changed:
                if not self._changed.wait_for(lambda: self._started or not self.alive, START_TIMEOUT):
                    raise UsageError("the luabridge fork server did not start a worker in time")
                if not self._started:
                    raise UsageError("the luabridge fork server is gone")
                return self._started.pop(0)

    def wait(self, pid: int, timeout: float) -> int | None:
        """The exit status of worker ``pid`` (negative: the signal that ended it), or ``None`` when not
        reported within ``timeout`` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exits or not self.alive, timeout)
            return self._exits.pop(pid, None)

    def close(self) -> None:
        """Stop the fork server; its workers end with their lifelines, or when their pool kills them."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for close in (self._control.close, self.process.stdin.close, self.process.stdout.close):
            try:
                close()
            except OSError:
                pass

    def _listen(self) -> None:
        pending = b""
        while True:
            try:
                chunk = self._control.recv(1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._changed:
                    self.process.poll()
                    self._changed.notify_all()
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            with self._changed:
                for line in lines:
                    self._note(line.decode("ascii", "replace").split())
                self._changed.notify_all()

    def _note(self, words: list[str]) -> None:
        if len(words) == 2 and words[0] == "started" and words[1].isdigit():
            self._started.append(int(words[1]))
        elif len(words) == 3 and words[0] == "exited" and words[1].isdigit():
            self._exits[int(words[1])] = int(words[2])


class WorkerProcess:
    """A forked worker as the pool sees it: a pid it can kill and whose exit status it can learn."""

    def __init__(self, pid: int, server: ForkServer) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._server = server
        self._learning = threading.Lock()  # the fork server reports a status once: one thread takes it
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self._pidfd = None

    def poll(self) -> int | None:
        return self.wait(0)

    def kill(self) -> None:
        with self._learning:
            if self.returncode is None:
                self.returncode = self._server.wait(self.pid, 0)
            if self.returncode is not None:
                return  # gone already: its pid may belong to another process by now
            try:
                if self._pidfd is not None:
                    signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
                else:
                    os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float = 5.0) -> int | None:
        with self._learning:
            if self.returncode is None:
                self.returncode = self._server.wait(self.pid, timeout)
            if self.returncode is not None and self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
            return self.returncode
