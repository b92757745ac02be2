"""The ``luabridge`` command on bad input, signals and hostile output: one clear line, never a traceback."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import luabridge
from luabridge import _cli
from luabridge._cli import main

FAULTS_GRAMMAR = "expected latency=SECONDS, a status such as 429 or 503"


@pytest.fixture(autouse=True)
def no_accounts(monkeypatch, tmp_path):
    """No account from the environment or a real ~/.config/luabridge/accounts.toml."""
    for name in list(os.environ):
        if name.startswith(("FRESHCHAT", "ECHO")) or name in ("LUABRIDGE_CONFIG", "LUABRIDGE_INTEGRATIONS"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``luabridge ARGS`` in this process; return its exit status, stdout and stderr."""
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def broken_accounts(tmp_path: Path) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_bytes(b'[freshchat.work]\nurl = "acme"\ntoken = "caf\xe9"\n')
    return path


# Bad input ----------------------------------------------------------------------------------------------


def test_an_accounts_file_that_is_not_utf8(capsys, tmp_path):
    path = broken_accounts(tmp_path)
    assert cli(capsys, "run", "-e", "return 1", "--config", str(path)) == (
        2, "", f"luabridge: configuration error: {path}: the accounts file is not valid UTF-8 (byte 42, line 3)\n"
    )


def test_docs_do_not_need_the_accounts(capsys, tmp_path):
    path = broken_accounts(tmp_path)
    status, out, err = cli(capsys, "docs", "integrations.freshchat.default", "--config", str(path))
    assert status == 0
    assert out.startswith("# Freshchat account 'default'\n")
    assert err == (f"luabridge: warning: showing the docs without accounts: {path}: the accounts file is not "
                   "valid UTF-8 (byte 42, line 3)\n")


def test_an_endless_script_file_is_refused_after_the_cap(capsys):
    assert cli(capsys, "run", "/dev/zero") == (
        2, "", "luabridge: error: /dev/zero: the script is larger than 16 MiB, the most luabridge reads\n"
    )


class EndlessInput:
    """Standard input that never ends, and remembers how much was asked of it."""

    def __init__(self) -> None:
        self.asked: list[int] = []
        self.buffer = self

    def read(self, size: int = -1) -> bytes:
        assert size >= 0, "read the whole of an endless input"
        self.asked.append(size)
        return b" " * size


def test_endless_standard_input_is_read_up_to_the_cap_only(capsys, monkeypatch):
    stdin = EndlessInput()
    monkeypatch.setattr(sys, "stdin", stdin)
    assert cli(capsys, "run", "-") == (
        2, "", "luabridge: error: standard input: the script is larger than 16 MiB, the most luabridge reads\n"
    )
    assert stdin.asked == [_cli.MAX_SCRIPT_BYTES + 1]


@pytest.mark.parametrize("code", [
    "return '\udcff'",  # how Python hands over an argument holding the byte 0xff
    "return '\ud800'",  # a lone surrogate, from a Python caller
])
def test_a_script_argument_that_is_not_utf8(capsys, code):
    assert cli(capsys, "run", "-e", code) == (2, "", "luabridge: error: the script is not valid UTF-8 (byte 8)\n")


@pytest.mark.parametrize("command", [["run", "--demo", "-e", "return 1"], ["simulator"]])
def test_a_bad_fault_spec(capsys, command):
    status, out, err = cli(capsys, *command, "--faults", "503,latency=soon")
    assert (status, out) == (2, "")
    assert err == "luabridge: error: --faults: bad fault spec 'latency=soon': latency must be a number, got 'soon'\n"


def test_an_unknown_fault(capsys):
    status, _, err = cli(capsys, "simulator", "--faults", "bogus")
    assert status == 2
    assert err.startswith(
        f"luabridge: error: --faults: bad fault spec 'bogus': unknown fault 'bogus'; {FAULTS_GRAMMAR}"
    )
    assert err.count("\n") == 1


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_a_port_out_of_range(capsys, port):
    assert cli(capsys, "simulator", "--port", port) == (
        2, "", f"luabridge: error: --port must be from 0 to 65535, got {port}\n"
    )


def test_a_port_in_use(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli(capsys, "simulator", "--port", str(port)) == (
            2, "", f"luabridge: error: cannot serve the Freshchat simulator on port {port}: Address already in use\n"
        )


def test_an_error_is_one_line_whatever_it_quotes(capsys, tmp_path):
    missing = tmp_path / "new\nline\x1b[2J.toml"
    escaped = str(missing).replace("\n", "\\x0a").replace("\x1b", "\\x1b")
    assert cli(capsys, "run", "-e", "return 1", "--config", str(missing)) == (
        2, "", f"luabridge: configuration error: accounts file not found: {escaped}\n"
    )


# What reaches the terminal ------------------------------------------------------------------------------


def test_the_report_escapes_control_characters(capsys):
    script = r'''print("\27]0;pwned\7") print("\27[2J") print("tab\tkept, DEL \127, CSI \u{9b}31m, CR \r")
    error("\27[31mred")'''
    status, out, err = cli(capsys, "run", "--in-process", "-e", script)
    assert (status, err) == (1, "")
    assert out.split("\nExecution time: ")[0] == (
        "Output:\n"
        "\\x1b]0;pwned\\x07\n"
        "\\x1b[2J\n"
        "tab\tkept, DEL \\x7f, CSI \\x9b31m, CR \\x0d\n"
        "Error: script:2: \\x1b[31mred"
    )


def test_the_returned_value_reaches_the_terminal_as_json(capsys):
    status, out, _ = cli(capsys, "run", "--in-process", "-e", r'return "\27[2J"')
    assert status == 0
    assert out.startswith('Return value: "\\u001b[2J"\n')


# Integrations beyond the installed ones -----------------------------------------------------------------

ECHO_SCRIPT = 'return app.integrations.echo.echo({text = "hi"})'


def test_integration_names_a_module_to_load(capsys, monkeypatch):
    monkeypatch.setenv("ECHO_TOKEN", "echo-secret")
    status, out, err = cli(capsys, "run", "--in-process", "--integration", "echo_integration", "-e", ECHO_SCRIPT)
    assert (status, err) == (0, "")
    assert out.startswith('Return value: {"account": "default", "args": {"page": 1, "text": "hi"}}\n')


def test_an_integration_named_as_module_and_attribute_reaches_the_worker(capsys, monkeypatch):
    # The entry-point form "module:attribute": the worker process loads it by the same reference.
    monkeypatch.setenv("ECHO_TOKEN", "echo-secret")
    status, out, err = cli(capsys, "run", "--integration", "echo_integration:integration", "-e", ECHO_SCRIPT)
    assert (status, err) == (0, "")
    assert out.startswith('Return value: {"account": "default", "args": {"page": 1, "text": "hi"}}\n')


def test_the_environment_names_modules_to_load(capsys, monkeypatch):
    monkeypatch.setenv("LUABRIDGE_INTEGRATIONS", " echo_integration ,")
    status, out, err = cli(capsys, "docs", "integrations.echo")
    assert (status, out, err) == (0, "# Echo — Lua API Reference\n\nA test-only integration.\n", "")
    assert cli(capsys, "docs", "integrations.echo", "--integration", "echo_integration")[0] == 0  # named twice: once


def test_without_the_module_the_integration_is_not_there(capsys):
    status, out, err = cli(capsys, "docs", "integrations.echo")
    assert (status, out) == (2, "")
    assert err.startswith("luabridge: error: Unknown doc page 'integrations.echo'.")


@pytest.mark.parametrize(("named", "error"), [
    ("no_such_module", "--integration: cannot import integration module 'no_such_module': "
                       "No module named 'no_such_module'"),
    ("json", "--integration: module 'json' has no 'integration' of type luabridge.Integration"),
    ("echo_integration:ECHO_TOKEN", "--integration: module 'echo_integration' has no 'ECHO_TOKEN' of type "
                                    "luabridge.Integration"),
    ("broken_integration", "--integration: importing integration module 'broken_integration' failed: "
                           "TypeError: a bug\nover two lines"),
])
@pytest.mark.parametrize("command", [["run", "-e", "return 1"], ["docs"], ["mcp"], ["simulator"]])
def test_a_module_that_is_no_integration(capsys, tmp_path, monkeypatch, command, named, error):
    (tmp_path / "broken_integration.py").write_text('raise TypeError("a bug\\nover two lines")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    one_line = error.replace("\n", "\\x0a")
    assert cli(capsys, *command, "--integration", named) == (2, "", f"luabridge: error: {one_line}\n")


def test_two_integrations_with_one_name(capsys, tmp_path, monkeypatch):
    (tmp_path / "other_echo.py").write_text(
        "import dataclasses\nimport echo_integration\n"
        "integration = dataclasses.replace(echo_integration.integration, title='Another echo')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("LUABRIDGE_INTEGRATIONS", "echo_integration")
    assert cli(capsys, "docs", "--integration", "other_echo") == (
        2, "", "luabridge: error: two integrations are named 'echo': module 'echo_integration' and "
               "module 'other_echo'\n"
    )


# The newcomer's path ------------------------------------------------------------------------------------


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert (exit_.value.code, capsys.readouterr().out) == (0, f"luabridge {luabridge.__version__}\n")


@pytest.mark.parametrize("command", [[], ["run"], ["docs"], ["simulator"], ["mcp"]])
def test_help_is_plain_text(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and out.startswith("usage: luabridge")
    assert "``" not in out and ":class:" not in out


def test_docs_of_the_demo(capsys):
    status, out, err = cli(capsys, "docs", "--demo", "integrations.freshchat.work")
    assert (status, err) == (0, "")
    assert out.startswith("# Freshchat account 'work'\n")
    assert "Configured accounts: default, work." in out


def test_the_demo_bridge_serves_every_simulator_while_open():
    with luabridge.demo(isolation=False) as bridge:
        result = bridge.run('return app.integrations.freshchat.work.get_agent("agent-123").email')
        url = bridge.catalog.accounts["freshchat"]["work"].url
    assert (result.ok, result.value) == (True, "alex.rivera@acme.example")
    assert url.startswith("http://127.0.0.1:")
    with pytest.raises(OSError):  # the simulator stopped with the block
        socket.create_connection(("127.0.0.1", int(url.split(":")[2].split("/")[0])), timeout=1).close()


def test_the_readme_python_example_runs_as_pasted():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    example, expected = re.search(r"```python\n(.*?)```\n\n```text\n(.*?)```", readme, re.S).groups()
    completed = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=60,
                               env={**os.environ, "HOME": os.devnull})
    assert completed.returncode == 0, completed.stderr
    durations = re.compile(r"duration_ms=[0-9.]+")
    assert durations.sub("duration_ms=…", completed.stdout) == durations.sub("duration_ms=…", expected)


# Signals ------------------------------------------------------------------------------------------------


def _children(pid: int) -> dict[int, str]:
    """The live descendants of ``pid`` (workers are forked by a fork server, the CLI's child), each with
    its start time (to tell it from a reused pid)."""
    parents, started = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and fields[0] != "Z":
                parents[int(entry)], started[int(entry)] = int(fields[1]), fields[19]
    found, frontier = {}, {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier and child not in found}
        found.update({child: started[child] for child in frontier})
    return found


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0


def _alive(pid: int, started: str) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z" and fields[19] == started


# One long C call: the worker cannot stop it itself (a `while true do end` would meet the instruction limit
# within a second), so only the bridge closing can end the worker before the 60 s timeout.
BUSY = 'return string.rep("a", 100000):find(".-.-.-b")'


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize(("number", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_a_run_and_its_worker(number, status):
    env = {key: value for key, value in os.environ.items() if not key.startswith("FRESHCHAT")}
    process = subprocess.Popen(
        [sys.executable, "-m", "luabridge._cli", "run", "--demo", "-e", BUSY, "--timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    children: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 60
        # Running: a worker has used more CPU time than starting one takes (about 0.15 s).
        while not any(_cpu_seconds(child) > 0.5 for child in children):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
            children = _children(process.pid)
        process.send_signal(number)
        out, err = process.communicate(timeout=30)
        assert (process.returncode, out) == (status, b"")
        assert b"Traceback" not in err, err.decode()
        deadline = time.monotonic() + 5
        while any(_alive(child, started) for child, started in children.items()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(child, started) for child, started in children.items())
    finally:
        process.kill()
        process.communicate()
        for child, started in children.items():
            if _alive(child, started):
                os.kill(child, signal.SIGKILL)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_simulator_quietly(number):
    process = subprocess.Popen([sys.executable, "-m", "luabridge._cli", "simulator"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().startswith("Serving the Freshchat simulator at http://127.0.0.1:")
        assert process.stdout.readline().startswith("Token: ")
        assert process.stdout.readline() == "Press Ctrl-C to stop.\n"
        process.send_signal(number)
        assert process.communicate(timeout=30) == ("", "")
        assert process.returncode == 0
    finally:
        process.kill()
        process.communicate()


def test_the_text_report_is_trimmed_to_its_budget_and_json_keeps_everything(capsys, monkeypatch):
    script = 'for i = 1, 2500 do print("line " .. i .. " of the flood") end return 1'
    status, out, _ = cli(capsys, "run", "--in-process", "-e", script)
    assert status == 0 and len(out) <= 20_000 + 200
    assert "line 1 of the flood\n" in out and "line 2500 of the flood\n" in out
    assert "characters" in out and "left out" in out and "Return value: 1" in out
    monkeypatch.setenv("LUABRIDGE_REPORT_CHARS", "0")
    status, untrimmed, _ = cli(capsys, "run", "--in-process", "-e", script)
    assert status == 0 and "line 1500 of the flood\n" in untrimmed and "left out" not in untrimmed
    status, as_json, _ = cli(capsys, "run", "--in-process", "--json", "-e", script)
    assert json.loads(as_json)["output"].count("\n") == 2500
