"""The ``luabridge`` command: run scripts, read the docs, serve a simulator or an MCP server.

Exit status of ``run``: 0 the script succeeded, 1 it failed (script, limit or integration error),
2 usage or configuration error. Bad input never ends in a traceback: it is one line on standard error,
``luabridge: error: ...`` or ``luabridge: configuration error: ...``, and exit status 2. A script file or
standard input is read up to :data:`MAX_SCRIPT_BYTES` (16 MiB) and refused past that.

Signals: SIGINT (Ctrl-C) and SIGTERM stop any command without a traceback, leaving every ``with`` block,
so a bridge always closes and its worker processes are stopped; a second signal does not cut that short.
``run`` then exits 130 after SIGINT and 143 after SIGTERM (128 plus the signal's number, as shells do).
``simulator`` and ``mcp`` exit 0: a signal is their ordinary way to stop.

The text report of ``run`` shows control characters from a script's output or a server's text escaped
(ESC as ``\\x1b``), so that they cannot drive the terminal; newlines and tabs are kept. ``--json`` is left as
JSON encodes it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

from . import __version__
from . import _budgets as budgets
from ._bridge import Bridge, check_code
from ._demo import demo, start_simulator
from ._discovery import ENVIRONMENT_VARIABLE, discover_integrations
from ._errors import ConfigError, IntegrationError, LookupFailure, UsageError
from ._limits import MiB
from ._permissions import Permissions
from ._registry import Integration
from ._result import RunResult
from ._trim import report_budget, trim_report

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
API_KEY_VARIABLE = "LUABRIDGE_API_KEY"  # the key clients of `luabridge serve` send as a bearer token
MAX_SCRIPT_BYTES = 16 * MiB
SERVERS = ("simulator", "mcp", "serve")  # commands a signal stops as intended, with exit status 0

_CONTROLS = [*range(0x20), *range(0x7F, 0xA0)]
_LINE_ESCAPES = {code: f"\\x{code:02x}" for code in _CONTROLS}
_REPORT_ESCAPES = {code: text for code, text in _LINE_ESCAPES.items() if chr(code) not in "\n\t"}


class _StopSignals:
    """SIGINT and SIGTERM as the CLI takes them.

    The first raises :class:`KeyboardInterrupt` in the main thread, so every ``with`` block it is in exits;
    later ones are only noted, and so is the first once :meth:`hold_on_exit` says cleanup has begun: no
    signal cuts short the closing of a bridge, which is what stops its workers.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the signals of an earlier command."""
        self.received: int | None = None
        self._holding = False

    def install(self) -> dict[int, object]:
        """Handle both signals here from now on (main thread only); return the handlers replaced."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {number: signal.signal(number, self._handle) for number in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = number
            if not self._holding:
                raise KeyboardInterrupt

    @contextlib.contextmanager
    def hold_on_exit(self) -> Iterator[None]:
        """On leaving this block, hold signals back for the rest of the command."""
        try:
            yield
        finally:
            self._holding = True


_signals = _StopSignals()


def _positive(kind: type) -> object:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            expected = "a number" if kind is float else "a whole number"
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
        return value

    return parse


def _add_integration_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--integration", dest="extra_integrations", action="append", default=[], metavar="MODULE",
                        help=f"also load the integration in MODULE (repeatable; also ${ENVIRONMENT_VARIABLE}, "
                             "comma-separated)")


def _add_bridge_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--demo", action="store_true",
                        help="run against the built-in simulators (no credentials needed)")
    parser.add_argument("--faults", metavar="SPEC", help="with --demo: faults for the simulator to inject")
    parser.add_argument("--config", metavar="PATH", help="accounts file (default: $LUABRIDGE_CONFIG)")
    _add_integration_option(parser)
    parser.add_argument("--read-only", action="store_true", help="deny write functions")
    parser.add_argument("--timeout", type=_positive(float), metavar="SECONDS", help="time limit per run (30)")
    parser.add_argument("--memory", type=_positive(float), metavar="MB", help="Lua memory limit in MiB (32)")
    parser.add_argument("--max-calls", type=_positive(int), metavar="N", help="integration calls per run (100)")
    parser.add_argument("--in-process", action="store_true",
                        help="skip the worker process (trusted code: one long C call can outlive the timeout)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="luabridge", description="Run Lua scripts in a sandbox that calls integrations; read their docs; "
        "serve a simulator or an MCP server.",
    )
    parser.add_argument("--version", action="version", version=f"luabridge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a Lua script (FILE, -e CODE, or - for standard input)")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", metavar="FILE", help="script file, or - for standard input")
    source.add_argument("-e", dest="code", metavar="CODE", help="the script itself")
    run.add_argument("--json", action="store_true", help="print the result object as JSON")
    run.add_argument("--dry-run", action="store_true",
                     help="send reads; answer each write with the request it would send, without sending it")
    run.add_argument("--approve-writes", action="store_true",
                     help="pause the run at its first write until `luabridge approve ID` or `reject ID`")
    _add_bridge_options(run)

    for decision, what in (("approve", "send the write a paused run waits at, once"),
                           ("reject", "refuse the write a paused run waits at")):
        resume = commands.add_parser(decision, help=f"{what}, and finish the run (approval ID)")
        resume.add_argument("approval_id", metavar="ID", help="the approval id a paused run printed")
        resume.add_argument("--json", action="store_true", help="print the result object as JSON")
        _add_bridge_options(resume)

    docs = commands.add_parser("docs", help="print what lua_read_doc(PAGE) returns; no PAGE: the index")
    docs.add_argument("page", nargs="?")
    docs.add_argument("--config", metavar="PATH", help="accounts file (for account pages)")
    docs.add_argument("--demo", action="store_true", help="the docs as run --demo scripts see them")
    _add_integration_option(docs)

    simulator = commands.add_parser("simulator", help="serve an integration's simulator on 127.0.0.1")
    simulator.add_argument("integration", nargs="?", help="which integration (default: the only one)")
    simulator.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    simulator.add_argument("--faults", metavar="SPEC", help="faults to inject")
    _add_integration_option(simulator)

    mcp = commands.add_parser("mcp", help="serve the runner as an MCP server over stdio")
    mcp.add_argument("--approve-writes", action="store_true",
                     help="ask the person at the client (MCP elicitation) before each write; refuse it if it cannot")
    _add_bridge_options(mcp)

    serve = commands.add_parser("serve", help="serve the runner over HTTP (runs, docs, approvals, MCP)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1; any other needs $LUABRIDGE_API_KEY)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: a free one)")
    serve.add_argument("--redis", metavar="URL", help="share budgets, pauses, idempotency records and "
                       "approvals with every node through this Redis (redis://host:port/db)")
    serve.add_argument("--workers", type=_positive(int), default=4, metavar="N", help="runs at once (4)")
    serve.add_argument("--queue", type=int, default=16, metavar="N",
                       help="runs that may wait for a worker; more are answered 429 (16)")
    serve.add_argument("--approve-writes", action="store_true",
                       help="pause runs at their first write until POST /v1/approvals/ID")
    _add_bridge_options(serve)
    return parser


def _integrations(args: argparse.Namespace) -> list[Integration]:
    return discover_integrations(args.extra_integrations)


@contextlib.contextmanager
def open_bridge(
    args: argparse.Namespace, *, limits_are_ceilings: bool = False, **extra: Any
) -> Iterator[Bridge]:
    """The bridge the options describe; with ``--demo``, its simulators run for as long as it is open.

    With ``limits_are_ceilings``, the limits given on the command line also cap what a caller may ask for
    per run (the MCP server: the operator's word is final, not the model's).
    """
    integrations = _integrations(args)
    limits = {
        "timeout": args.timeout,
        "memory": int(args.memory * MiB) if args.memory else None,
        "calls": args.max_calls,
    }
    options = dict(
        integrations=integrations, limits=limits, isolation=not args.in_process,
        ceilings={name: value for name, value in limits.items() if value is not None} if limits_are_ceilings else None,
        permissions=_permissions(args), **extra,
    )
    if args.faults and not args.demo:
        raise UsageError("--faults needs --demo")
    if args.demo:
        with demo(faults=args.faults, **options) as bridge, _signals.hold_on_exit():
            yield bridge
    else:
        with Bridge.from_env(config_path=args.config, **options) as bridge, _signals.hold_on_exit():
            yield bridge


def _permissions(args: argparse.Namespace) -> Permissions | None:
    if args.read_only and getattr(args, "approve_writes", False):
        raise UsageError("--read-only and --approve-writes cannot be used together")
    if args.read_only:
        return Permissions.read_only()
    return Permissions.approve_writes() if getattr(args, "approve_writes", False) else None


def _read_source(args: argparse.Namespace) -> str:
    if args.code is not None:
        # As bytes, the way the shell passed them: an argument that is not UTF-8 is refused like a file.
        try:
            return check_code(os.fsencode(args.code))
        except UnicodeEncodeError:  # a lone surrogate from a Python caller, which no shell can pass
            return check_code(args.code.encode("utf-8", "surrogatepass"))
    name = "standard input" if args.file == "-" else args.file
    try:
        if args.file == "-":
            data = sys.stdin.buffer.read(MAX_SCRIPT_BYTES + 1)
        else:
            with open(args.file, "rb") as file:
                data = file.read(MAX_SCRIPT_BYTES + 1)  # never more: the file may be /dev/zero
    except OSError as exc:
        raise UsageError(f"cannot read script {args.file!r}: {exc.strerror or exc}") from exc
    if len(data) > MAX_SCRIPT_BYTES:
        raise UsageError(f"{name}: the script is larger than {MAX_SCRIPT_BYTES // MiB} MiB, the most luabridge reads")
    try:
        return check_code(data)
    except UsageError as exc:
        if args.file == "-":
            raise
        raise UsageError(f"{args.file}: {exc}") from exc


def _printable(text: str) -> str:
    """``text`` with control characters escaped, newlines and tabs kept: safe to show on a terminal."""
    return text.translate(_REPORT_ESCAPES)


def _one_line(text: str) -> str:
    """``text`` with every control character escaped, newlines and tabs too."""
    return text.translate(_LINE_ESCAPES)


def _run(args: argparse.Namespace) -> int:
    code = _read_source(args)
    budget = None if args.json else report_budget()  # read first: a bad setting must not cost a run
    with open_bridge(args) as bridge:
        result = bridge.run(code, dry_run=args.dry_run)
    return _print_result(args, result, budget)


def _resume(args: argparse.Namespace) -> int:
    """``approve ID`` / ``reject ID``: finish a paused run, printed like ``run``."""
    budget = None if args.json else report_budget()
    with open_bridge(args) as bridge:
        result = bridge.resume(args.approval_id, approve=args.command == "approve")
    return _print_result(args, result, budget)


def _print_result(args: argparse.Namespace, result: RunResult, budget: int | None) -> int:
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        print(_printable(trim_report(result, budget)))
    return EXIT_OK if result.ok else EXIT_FAILED


@contextlib.contextmanager
def _docs_bridge(args: argparse.Namespace) -> Iterator[Bridge]:
    """A bridge for reading the docs: with the demo's accounts, the configured ones, or none when those are
    broken."""
    integrations = _integrations(args)
    if args.demo:
        with demo(integrations=integrations, isolation=False) as bridge:
            yield bridge
        return
    try:
        bridge = Bridge.from_env(config_path=args.config, integrations=integrations, isolation=False)
    except ConfigError as exc:
        # The docs do not need accounts; only the account pages would have listed them.
        print(f"luabridge: warning: showing the docs without accounts: {_one_line(str(exc))}", file=sys.stderr)
        bridge = Bridge(integrations=integrations, isolation=False)
    with bridge:
        yield bridge


def _docs(args: argparse.Namespace) -> int:
    with _docs_bridge(args) as bridge:
        text = bridge.docs.read(args.page) if args.page else bridge.docs.index()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


def _simulator(args: argparse.Namespace) -> int:
    served = [integration for integration in _integrations(args) if integration.simulator is not None]
    names = [integration.name for integration in served]
    if args.integration:
        served = [integration for integration in served if integration.name == args.integration]
        if not served:
            raise UsageError(f"no simulator for {args.integration!r}; simulators: {', '.join(names)}")
    elif len(served) != 1:
        raise UsageError(f"name the integration to simulate: {', '.join(names) or '(none)'}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535, got {args.port}")
    simulator = start_simulator(served[0], port=args.port, faults=args.faults)
    try:
        print(f"Serving the {served[0].title} simulator at {simulator.url}", flush=True)
        print(f"Token: {simulator.token}", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        simulator.serve_forever()
    finally:
        simulator.stop()
    return EXIT_OK


def _mcp(args: argparse.Namespace) -> int:
    try:
        from ._mcp import serve
    except ImportError as exc:
        raise UsageError(
            f"luabridge mcp needs the MCP SDK, version 2 ({exc}); install it with: pip install -U 'luabridge[mcp]'"
        ) from exc
    with open_bridge(args, limits_are_ceilings=True) as bridge:
        try:
            serve(bridge)
        finally:
            # serve() takes both signals while it runs, and its event loop puts back the default handlers
            # when it stops; the bridge has yet to close.
            _signals.install()
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    try:
        from ._serve import LOOPBACK, RedisApprovalStore, connect_redis, serve
    except ImportError as exc:
        raise UsageError(f"luabridge serve needs its extra ({exc}); install it with: pip install 'luabridge[serve]'"
                         ) from exc
    api_key = os.environ.get(API_KEY_VARIABLE) or None
    if api_key is None and args.host not in LOOPBACK:
        raise UsageError(f"--host {args.host} is not loopback: set ${API_KEY_VARIABLE} so that clients must "
                         "send it, or bind 127.0.0.1")
    if not 0 <= args.port <= 65535 or args.queue < 0:
        raise UsageError("--port must be from 0 to 65535 and --queue 0 or more")
    extra: dict[str, Any] = {"max_workers": args.workers}
    redis = None
    if args.redis:
        try:
            redis = connect_redis(args.redis)
            budgets.share_through(args.redis)
        except Exception as exc:
            raise UsageError(f"--redis: cannot use {args.redis!r}: {exc}") from exc
        extra["approvals"] = RedisApprovalStore(redis)
    with open_bridge(args, limits_are_ceilings=True, **extra) as bridge:
        serve(bridge, host=args.host, port=args.port, workers=args.workers, queue=args.queue, api_key=api_key,
              redis=redis)
    return EXIT_OK


COMMANDS = {"run": _run, "approve": _resume, "reject": _resume, "docs": _docs, "simulator": _simulator, "mcp": _mcp,
            "serve": _serve}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``luabridge`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    _signals.reset()
    replaced = _signals.install()
    try:
        status = COMMANDS[args.command](args)
    except (UsageError, ConfigError, IntegrationError, LookupFailure) as exc:
        kind = "configuration error" if isinstance(exc, ConfigError) else "error"
        print(f"luabridge: {kind}: {_one_line(str(exc))}", file=sys.stderr)
        status = EXIT_USAGE
    except KeyboardInterrupt:
        status = EXIT_OK if args.command in SERVERS else 128 + (_signals.received or signal.SIGINT)
    except BrokenPipeError:
        status = EXIT_FAILED
    finally:
        for number, handler in replaced.items():
            signal.signal(number, handler)
    if _signals.received is not None and args.command not in SERVERS:
        return 128 + _signals.received
    return status


if __name__ == "__main__":
    sys.exit(main())
