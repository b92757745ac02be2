"""The frames between host and worker: every message survives the pipe, and every bad frame is refused."""

from __future__ import annotations

import os
import threading
import time

import pytest

from luabridge._protocol import (
    MAX_HEADER,
    Call,
    Done,
    FrameReader,
    Init,
    ProtocolError,
    Ready,
    Reply,
    Run,
    write_frame,
)


@pytest.fixture
def pipe():
    read, write = os.pipe()
    yield FrameReader(read, max_body=1 << 16), write
    for fd in (read, write):
        try:
            os.close(fd)
        except OSError:
            pass


MESSAGES = [
    Init(sys_path=["/a", "/b"], integrations=["x.y"], aliases={"echo": ["default", "work"]}, control_fd=5),
    Ready(hardening={"seccomp": "on"}),
    Run(limits={"timeout": 1.5, "memory": 1024}, spin=0.0002, body="return 'é'".encode()),
    Call(path="app.integrations.echo.echo", nargs=1, colon=False, encode_error=None, room=1e6, body=b'{"a":1}'),
    Reply(status="error", error_type="validation", message="bad \u2028 line\nbreak", spin=0.0),
    Done(error_type=None, body=b"[1,2]"),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: m.kind)
def test_every_message_arrives_as_it_was_sent(pipe, message):
    reader, write = pipe
    write_frame(write, message)
    assert reader.receive() == message


def test_frames_written_back_to_back_are_read_one_by_one(pipe):
    reader, write = pipe
    for message in MESSAGES:
        write_frame(write, message)
    assert [reader.receive() for _ in MESSAGES] == MESSAGES


@pytest.mark.parametrize("frame, reason", [
    (b"not json\n", "malformed message header"),
    (b'{"type": "run"}\n', "malformed message header"),
    (b'{"type": "nope", "body": 0}\n', "malformed message (KeyError)"),
    (b'{"type": "run", "body": 0, "extra": 1}\n', "malformed message (TypeError)"),
    (b'{"type": "run", "body": -1}\n', "a message body of -1 bytes"),
    (b'{"type": "run", "body": 65537}\n', "a message body of 65537 bytes"),
])
def test_a_bad_frame_is_a_protocol_error(pipe, frame, reason):
    reader, write = pipe
    os.write(write, frame)
    with pytest.raises(ProtocolError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        reader.receive()


def test_a_header_with_no_end_is_refused_once_it_passes_its_bound(pipe):
    reader, write = pipe

    def flood():
        try:
            for _ in range(MAX_HEADER // 4096 + 2):
                os.write(write, b"x" * 4096)
        except OSError:
            pass  # the reader gave up and the pipe closed

    threading.Thread(target=flood, daemon=True).start()
    with pytest.raises(ProtocolError, match="header longer than"):
        reader.receive(time.monotonic() + 10)


def test_nothing_by_the_deadline_is_none_with_or_without_spinning(pipe):
    reader, _ = pipe
    for spin in (0.0, 0.05):
        started = time.monotonic()
        assert reader.receive(started + 0.2, spin=spin) is None
        assert time.monotonic() - started >= 0.2


def test_a_closed_pipe_is_none(pipe):
    reader, write = pipe
    os.close(write)
    assert reader.receive(spin=0.01) is None


@pytest.mark.parametrize("delay", [0.01, 0.3], ids=["during the spin", "after it, while sleeping"])
def test_spinning_receives_a_frame_whenever_it_comes(pipe, delay):
    reader, write = pipe
    timer = threading.Timer(delay, write_frame, (write, Done(body=b"1")))
    timer.start()
    try:
        assert reader.receive(time.monotonic() + 10, spin=0.1) == Done(body=b"1")
    finally:
        timer.join()
