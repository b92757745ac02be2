"""The ``luabridge`` command: run scripts, read the docs, serve a simulator or an MCP server.

Exit status of ``run``: 0 the script succeeded, 1 it failed (script, limit or integration error),
2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from ._bridge import Bridge, check_code
from ._errors import ConfigError, LookupFailure, UsageError
from ._limits import MiB
from ._permissions import Permissions
from ._registry import Account, Integration, Secret, Simulator, builtin_integration_modules, load_integration

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEMO_ALIASES = ("default", "work")


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


def _add_bridge_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--demo", action="store_true",
                        help="run against the built-in simulators (no credentials needed)")
    parser.add_argument("--faults", metavar="SPEC", help="with --demo: faults for the simulator to inject")
    parser.add_argument("--config", metavar="PATH", help="accounts file (default: $LUABRIDGE_CONFIG)")
    parser.add_argument("--read-only", action="store_true", help="deny write functions")
    parser.add_argument("--timeout", type=_positive(float), metavar="SECONDS", help="time limit per run (30)")
    parser.add_argument("--memory", type=_positive(float), metavar="MB", help="Lua memory limit in MiB (32)")
    parser.add_argument("--max-calls", type=_positive(int), metavar="N", help="integration calls per run (100)")
    parser.add_argument("--in-process", action="store_true",
                        help="skip the worker process (trusted code: one long C call can outlive the timeout)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="luabridge", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a Lua script (FILE, -e CODE, or - for standard input)")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", metavar="FILE", help="script file, or - for standard input")
    source.add_argument("-e", dest="code", metavar="CODE", help="the script itself")
    run.add_argument("--json", action="store_true", help="print the result object as JSON")
    _add_bridge_options(run)

    docs = commands.add_parser("docs", help="print what lua_read_doc(PAGE) returns; no PAGE: the index")
    docs.add_argument("page", nargs="?")
    docs.add_argument("--config", metavar="PATH", help="accounts file (for account pages)")

    simulator = commands.add_parser("simulator", help="serve an integration's simulator on 127.0.0.1")
    simulator.add_argument("integration", nargs="?", help="which integration (default: the only one)")
    simulator.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    simulator.add_argument("--faults", metavar="SPEC", help="faults to inject")

    mcp = commands.add_parser("mcp", help="serve the runner as an MCP server over stdio")
    _add_bridge_options(mcp)
    return parser


def _integrations() -> list[Integration]:
    return [load_integration(module) for module in builtin_integration_modules()]


@contextlib.contextmanager
def _simulators(integrations: Sequence[Integration], faults: str | None) -> Iterator[list[Simulator]]:
    started: list[Simulator] = []
    try:
        for integration in integrations:
            if integration.simulator is not None:
                started.append(integration.simulator(port=0, faults=faults).start())
        yield started
    finally:
        for simulator in started:
            simulator.stop()


def _demo_accounts(integrations: Sequence[Integration], simulators: Sequence[Simulator]) -> dict:
    served = [integration for integration in integrations if integration.simulator is not None]
    return {
        integration.name: {
            alias: Account(integration.name, alias, simulator.url, Secret(simulator.token)) for alias in DEMO_ALIASES
        }
        for integration, simulator in zip(served, simulators, strict=True)
    }


@contextlib.contextmanager
def open_bridge(args: argparse.Namespace, *, limits_are_ceilings: bool = False) -> Iterator[Bridge]:
    """The bridge the options describe; with ``--demo``, its simulators run for as long as it is open.

    With ``limits_are_ceilings``, the limits given on the command line also cap what a caller may ask for
    per run (the MCP server: the operator's word is final, not the model's).
    """
    integrations = _integrations()
    limits = {
        "timeout": args.timeout,
        "memory": int(args.memory * MiB) if args.memory else None,
        "calls": args.max_calls,
    }
    options = dict(
        integrations=integrations, limits=limits, isolation=not args.in_process,
        ceilings={name: value for name, value in limits.items() if value is not None} if limits_are_ceilings else None,
        permissions=Permissions.read_only() if args.read_only else None,
    )
    if args.faults and not args.demo:
        raise UsageError("--faults needs --demo")
    if args.demo:
        with _simulators(integrations, args.faults) as simulators:
            with Bridge(_demo_accounts(integrations, simulators), **options) as bridge:
                yield bridge
    else:
        with Bridge.from_env(config_path=args.config, **options) as bridge:
            yield bridge


def _read_source(args: argparse.Namespace) -> str:
    if args.code is not None:
        return check_code(args.code)
    if args.file == "-":
        return check_code(sys.stdin.buffer.read())
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read script {args.file!r}: {exc.strerror or exc}") from exc
    try:
        return check_code(data)
    except UsageError as exc:
        raise UsageError(f"{args.file}: {exc}") from exc


def _run(args: argparse.Namespace) -> int:
    code = _read_source(args)
    with open_bridge(args) as bridge:
        result = bridge.run(code)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        print(result.report())
    return EXIT_OK if result.ok else EXIT_FAILED


def _docs(args: argparse.Namespace) -> int:
    with Bridge.from_env(config_path=args.config, integrations=_integrations(), isolation=False) as bridge:
        text = bridge.docs.read(args.page) if args.page else bridge.docs.index()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


def _simulator(args: argparse.Namespace) -> int:
    served = [integration for integration in _integrations() if integration.simulator is not None]
    names = [integration.name for integration in served]
    if args.integration:
        served = [integration for integration in served if integration.name == args.integration]
        if not served:
            raise UsageError(f"no simulator for {args.integration!r}; simulators: {', '.join(names)}")
    elif len(served) != 1:
        raise UsageError(f"name the integration to simulate: {', '.join(names) or '(none)'}")
    simulator = served[0].simulator(port=args.port, faults=args.faults)
    print(f"Serving the {served[0].title} simulator at {simulator.url}", flush=True)
    print(f"Token: {simulator.token}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        simulator.serve_forever()
    except KeyboardInterrupt:
        pass
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
        serve(bridge)
    return EXIT_OK


COMMANDS = {"run": _run, "docs": _docs, "simulator": _simulator, "mcp": _mcp}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``luabridge`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return COMMANDS[args.command](args)
    except (UsageError, ConfigError, LookupFailure) as exc:
        kind = "configuration error" if isinstance(exc, ConfigError) else "error"
        print(f"luabridge: {kind}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
