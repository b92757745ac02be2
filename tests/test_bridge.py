"""The host API and the CLI: result objects, reports, exit codes, and clean errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from echo_integration import ECHO_TOKEN, echo_accounts
from echo_integration import integration as echo

import luabridge
from luabridge import Bridge, Permissions, RunResult, UsageError


def test_public_names_are_what_users_import():
    assert luabridge.__all__ == sorted(luabridge.__all__)
    assert set(luabridge.__all__) == {
        "DEFAULT_LIMITS", "Account", "AccountError", "AccountKey", "AccountScheme", "ArgumentError", "Bridge",
        "CallContext", "CallError", "CallRecord", "ConfigError", "Function", "Integration", "IntegrationError",
        "LimitExceeded", "Limits", "LookupFailure",
        "LuabridgeError", "PermissionDenied", "PermissionRequest", "Permissions", "RemoteError", "RunError",
        "RunResult", "Secret", "UsageError", "__version__", "demo",
    }
    for name in luabridge.__all__:
        assert hasattr(luabridge, name)


def test_result_object_has_the_documented_shape(run):
    result = run('print("hi", 2) app.integrations.echo.echo{text = "x"} return {1, 2, {a = true}}')
    data = result.to_json()
    assert list(data) == ["ok", "result", "output", "error", "calls", "retryable", "pending", "duration_ms"]
    assert data["retryable"] is True and data["pending"] is None
    assert data["ok"] is True and data["error"] is None
    assert data["result"] == [1, 2, {"a": True}]
    assert data["output"] == "hi\t2\n"
    assert list(data["calls"][0]) == [
        "function", "account", "ok", "duration_ms", "http_status", "error", "effect", "outcome",
    ]
    assert (data["calls"][0]["effect"], data["calls"][0]["outcome"]) == ("read", "succeeded")
    assert data["calls"][0]["function"] == "echo.echo" and data["calls"][0]["account"] == "default"
    assert RunResult.from_json(json.loads(json.dumps(data))).to_json() == data


def test_several_return_values_are_a_list_and_none_is_null(run):
    assert run("return 1, nil, 'x'").value == [1, None, "x"]
    assert run("local x = 1").value is None


def test_text_report_lines_appear_only_when_they_apply(run):
    report = run('print("hello") return {n = 1}').report().splitlines()
    assert report[:3] == ["Output:", "hello", 'Return value: {"n": 1}']
    assert report[3].startswith("Execution time: ") and report[3].endswith("ms")
    assert len(report) == 4
    failed = run("app.integrations.echo.echo() error('boom')").report().splitlines()
    assert failed[0] == "Error: script:1: boom"
    assert failed[-1] == "Integration calls: 1"


@pytest.mark.parametrize("code, message", [
    ("", "the script is empty"),
    ("  \n\t", "the script is empty"),
    (b"return '\xff'", "the script is not valid UTF-8 (byte 8)"),
    (42, "the script must be text, got int"),
    # What json.loads makes of "return '\\ud800'": text Python holds and UTF-8 cannot carry.
    ("return 'é\ud800'", "the script is not valid Unicode: a lone surrogate at character 9"),
])
@pytest.mark.parametrize("mode", ["in_process", "worker"])
def test_bad_scripts_are_usage_errors(bridge, isolated_bridge, mode, code, message):
    with pytest.raises(UsageError) as raised:
        (bridge if mode == "in_process" else isolated_bridge).run(code)
    assert str(raised.value) == message


def test_utf8_bytes_are_accepted(bridge):
    assert bridge.run("return 'héllo'".encode()).value == "héllo"


def test_invalid_permissions_are_usage_errors():
    expected = "permission for 'write' must be one of allow, deny, ask, approve, got 'maybe'"
    with pytest.raises(UsageError, match=expected):
        Permissions(write="maybe")
    with pytest.raises(UsageError, match="needs an ask callback"):
        Permissions(write="ask")


def test_worker_mode_needs_integrations_by_module_name():
    with Bridge(echo_accounts(), integrations=[echo]) as bridge:
        with pytest.raises(UsageError, match="can only load integrations by module name"):
            bridge.run("return 1")


def test_ask_policy_works_across_the_worker_pipe(isolated_bridge):
    asked = []
    permissions = Permissions(write="ask", ask=lambda request: asked.append(request.function) or True)
    result = isolated_bridge.run('return app.integrations.echo.store{name = "n"}', permissions=permissions)
    assert result.value == {"stored": "n"}
    assert asked == ["echo.store"]
    denied = isolated_bridge.run('return app.integrations.echo.store{name = "n"}',
                                 permissions=Permissions(write="ask", ask=lambda request: False))
    assert denied.error.type == "permission"


def test_worker_gets_no_token_in_its_environment_or_command_line(isolated_bridge):
    # The worker is a child process: read what the kernel shows of it, from this side.
    isolated_bridge.run("return 1")
    pool = isolated_bridge._workers()
    worker = pool._idle[0]
    with open(f"/proc/{worker.process.pid}/environ", "rb") as environ, \
            open(f"/proc/{worker.process.pid}/cmdline", "rb") as cmdline:
        exposed = environ.read() + cmdline.read()
    assert ECHO_TOKEN.encode() not in exposed


def _cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FRESHCHAT")}
    return subprocess.run(
        [sys.executable, "-m", "luabridge._cli", *args], input=stdin, capture_output=True, env=env, check=False,
    )


def test_cli_json_prints_the_result_object():
    completed = _cli("run", "-e", 'print("hi") return {1,2,{a=true}}', "--json", "--in-process")
    assert completed.returncode == 0
    data = json.loads(completed.stdout)
    assert data["ok"] is True and data["result"] == [1, 2, {"a": True}] and data["output"] == "hi\n"
    assert data["error"] is None and data["calls"] == [] and isinstance(data["duration_ms"], float)


def test_cli_exit_status_is_1_when_the_script_fails():
    completed = _cli("run", "-e", "error('boom')")
    assert completed.returncode == 1
    assert completed.stdout.decode().startswith("Error: script:1: boom\n")


def test_cli_reads_standard_input():
    completed = _cli("run", "-", "--in-process", stdin=b"return 6 * 7")
    assert completed.stdout.decode().startswith("Return value: 42\n")


@pytest.mark.parametrize("args, message", [
    (["run", "missing.lua"], "luabridge: error: cannot read script 'missing.lua': No such file or directory"),
    (["run", "-e", ""], "luabridge: error: the script is empty"),
    (["docs", "nope"], "luabridge: error: Unknown doc page 'nope'."),
    (["run", "-e", "return 1", "--faults", "503"], "luabridge: error: --faults needs --demo"),
])
def test_cli_usage_errors_exit_2_with_a_clear_message(args, message):
    completed = _cli(*args)
    assert completed.returncode == 2
    assert completed.stderr.decode().startswith(message)


@pytest.mark.parametrize("flag, value, message", [
    ("--timeout", "0", "argument --timeout: must be greater than 0, got '0'"),
    ("--timeout", "soon", "argument --timeout: expected a number, got 'soon'"),
    ("--memory", "-5", "argument --memory: must be greater than 0, got '-5'"),
    ("--max-calls", "2.5", "argument --max-calls: expected a whole number, got '2.5'"),
])
def test_cli_invalid_limits_exit_2(flag, value, message):
    completed = _cli("run", "-e", "return 1", flag, value)
    assert completed.returncode == 2
    assert message in completed.stderr.decode()


def test_cli_limits_apply(tmp_path):
    # A loop slow per instruction: a bare `while true do end` can pass 200 million instructions in 0.5 s.
    completed = _cli("run", "-e", "while true do local s = ('x'):rep(64) end", "--timeout", "0.5", "--json")
    assert completed.returncode == 1
    assert json.loads(completed.stdout)["error"]["type"] == "timeout"


def test_cli_rejects_unreadable_and_non_utf8_files(tmp_path):
    binary = tmp_path / "binary.lua"
    binary.write_bytes(b"return '\xff\xfe'")
    completed = _cli("run", str(binary))
    assert completed.returncode == 2
    assert completed.stderr.decode().startswith(f"luabridge: error: {binary}: the script is not valid UTF-8")
    empty = tmp_path / "empty.lua"
    empty.write_text("")
    assert _cli("run", str(empty)).stderr.decode().startswith(f"luabridge: error: {empty}: the script is empty")
    assert _cli("run", str(tmp_path)).returncode == 2


def test_cli_config_errors_exit_2(tmp_path):
    config = tmp_path / "accounts.toml"
    config.write_text("[freshchat.work\n")
    completed = _cli("run", "-e", "return 1", "--config", str(config))
    assert completed.returncode == 2
    assert completed.stderr.decode().startswith("luabridge: configuration error: ")


def test_mcp_limits_given_by_the_operator_are_ceilings_too():
    from luabridge._cli import build_parser, open_bridge

    args = build_parser().parse_args(["mcp", "--demo", "--in-process", "--timeout", "2", "--max-calls", "5"])
    with open_bridge(args, limits_are_ceilings=True) as bridge:
        assert (bridge.limits.timeout, bridge.limits.calls) == (2, 5)
        with pytest.raises(UsageError, match="limit 'timeout' of 10 is above the host's ceiling of 2"):
            bridge.run("return 1", limits={"timeout": 10})
        assert bridge.run("return 1", limits={"timeout": 1}).ok
