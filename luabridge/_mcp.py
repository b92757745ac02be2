"""The MCP server behind ``luabridge mcp``: the sandboxed runner and its docs as tools, over stdio.

Four tools, named like the functions a script has:

- ``execute_lua(code, [timeout], [memory_mb], [max_calls])`` runs a script and answers with its text report,
  flagged as an error when the script failed;
- ``lua_read_doc([page])``, ``lua_list_docs([prefix])`` and ``lua_search_docs(query)`` answer what the Lua
  functions of the same names return: a page as text, the page names and the search hits as JSON.

The descriptions are written from the bridge (its integrations, accounts, limits and permissions), so this
module names no integration. Whatever goes wrong inside a call comes back as an error result the model can
read; the server stops when standard input closes (see :func:`serve`). Standard output carries the protocol
alone: logs go to standard error, and while it serves, the SDK's stdio transport points file
descriptor 1 at standard error so that stray output cannot corrupt the protocol.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import signal
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import mcp.types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server

from . import __version__
from ._bridge import Bridge
from ._errors import LookupFailure, PermissionDenied, UsageError
from ._limits import KiB, MiB
from ._permissions import PermissionRequest, Permissions
from ._trim import report_budget, trim_report

logger = logging.getLogger("luabridge")

# execute_lua's limit parameters: the Limits field each sets, and how a parameter value becomes a field value
_LIMIT_PARAMETERS: dict[str, tuple[str, Callable[[float], float | int]]] = {
    "timeout": ("timeout", float),
    "memory_mb": ("memory", lambda mb: int(mb * MiB)),
    "max_calls": ("calls", int),
}


class LuaTools:
    """The tools over one bridge: their definitions for ``tools/list`` and the answer to each ``tools/call``."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.definitions = [
            _execute_lua_tool(bridge), _read_doc_tool(bridge), _list_docs_tool(bridge), _search_docs_tool(),
        ]
        self._tools = {tool.name: tool for tool in self.definitions}
        self._handlers: dict[str, Callable[..., Awaitable[types.CallToolResult]]] = {
            "execute_lua": self._execute_lua,
            "lua_read_doc": self._read_doc,
            "lua_list_docs": self._list_docs,
            "lua_search_docs": self._search_docs,
        }

    async def call(
        self, name: str, arguments: Mapping[str, Any] | None, ctx: ServerRequestContext | None = None
    ) -> types.CallToolResult:
        """Answer one tool call; every failure, luabridge's own bugs included, becomes an error result.
        ``ctx`` is the request's context: ``execute_lua`` asks its client's person to approve writes."""
        tool = self._tools.get(name)
        if tool is None:
            return _error(f"unknown tool '{name}'; tools: {', '.join(self._tools)}")
        try:
            checked = _check_arguments(tool, arguments or {})
            if name == "execute_lua":
                checked["permissions"] = self._approvals_by_person(ctx)
            return await self._handlers[name](**checked)
        except (UsageError, LookupFailure) as exc:
            return _error(str(exc))
        except Exception as exc:
            logger.exception("the %s tool failed", name)
            # Only the exception's type: its text is the host's business (and could quote anything, a secret
            # included); the log on standard error has the whole traceback.
            return _error(f"{name} failed inside luabridge ({type(exc).__name__}); this is a bug in the host, "
                          "not in the call, and its log has the details")

    async def _execute_lua(
        self, code: str, permissions: Permissions | None = None, dry_run: bool = False, **limits: float
    ) -> types.CallToolResult:
        budget = report_budget()  # read first: a bad setting must not cost a run
        overrides = {}
        for parameter, value in limits.items():
            field, convert = _LIMIT_PARAMETERS[parameter]
            overrides[field] = convert(value)
        # bridge.run blocks until the worker reports or is killed at the deadline; in a thread, the server
        # keeps answering meanwhile and several runs can go on at once.
        options: dict[str, Any] = {"limits": overrides}
        if permissions is not None:
            options["permissions"] = permissions
        if dry_run:
            options["dry_run"] = True
        result = await anyio.to_thread.run_sync(functools.partial(self.bridge.run, code, **options))
        return _text(trim_report(result, budget), error=not result.ok)

    def _approvals_by_person(self, ctx: ServerRequestContext | None) -> Permissions | None:
        """The bridge's permissions with each "approve" turned into a question to the person at the client,
        through MCP elicitation (never to the model: no tool approves a write). A client that cannot ask
        gets such writes refused, saying why. ``None``: the bridge's permissions as they are."""
        policy = self.bridge.permissions
        if "approve" not in (policy.read, policy.write):
            return None
        session = ctx.session if ctx is not None else None
        can_ask = session is not None and session.check_client_capability(
            types.ClientCapabilities(elicitation=types.ElicitationCapability()))
        token = anyio.lowlevel.current_token()

        def ask(request: PermissionRequest) -> bool:
            if not can_ask:
                raise PermissionDenied(
                    f"{request.function}: permission denied: this {request.operation} needs a person's approval and "
                    "this MCP client cannot ask one (it does not support elicitation); nothing was sent")
            answer = anyio.from_thread.run(
                session.elicit_form, _approval_question(request), _APPROVAL_SCHEMA, ctx.request_id, token=token)
            return answer.action == "accept" and (answer.content or {}).get("approve") is True

        def decision(operation: str) -> str:
            return "ask" if policy.decision(operation) == "approve" else policy.decision(operation)

        return Permissions(read=decision("read"), write=decision("write"), ask=ask)

    async def _read_doc(self, page: str | None = None) -> types.CallToolResult:
        docs = self.bridge.docs
        return _text(docs.index() if page is None else docs.read(page))

    async def _list_docs(self, prefix: str | None = None) -> types.CallToolResult:
        return _text(json.dumps(self.bridge.docs.list(prefix), ensure_ascii=False, indent=2))

    async def _search_docs(self, query: str) -> types.CallToolResult:
        if not query.strip():
            raise UsageError('the query is empty; give words to search for, like "agent email"')
        return _text(json.dumps(self.bridge.docs.search(query), ensure_ascii=False, indent=2))


def create_server(bridge: Bridge) -> Server:
    """Return an MCP server, not yet running, whose tools run scripts on ``bridge`` and read its docs."""
    tools = LuaTools(bridge)

    async def list_tools(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools.definitions)

    async def call_tool(ctx: ServerRequestContext, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await tools.call(params.name, params.arguments, ctx)

    return Server(
        "luabridge", version=__version__, instructions=_instructions(bridge),
        on_list_tools=list_tools, on_call_tool=call_tool,
    )


def serve(bridge: Bridge) -> None:
    """Serve ``bridge`` as an MCP server on standard input and output until standard input closes.

    Closing standard input is how MCP clients stop a stdio server. SIGTERM and Ctrl-C stop it too, but only
    once the SDK's read of standard input returns (at the next line or at the end of input): that read
    happens in a thread nothing can interrupt.
    """
    server = create_server(bridge)
    if bridge.isolation:
        # A warm worker makes the first run as fast as the next ones; starting it here, before any request,
        # also creates the bridge's worker pool before concurrent first runs could each create one.
        bridge.prestart()
    anyio.run(_serve_stdio, server)


async def _serve_stdio(server: Server) -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(_cancel_on_signal, group.cancel_scope)
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
        group.cancel_scope.cancel()


async def _cancel_on_signal(scope: anyio.CancelScope) -> None:
    # The CLI turns SIGTERM into KeyboardInterrupt, which strikes wherever the main thread happens to be, even
    # inside anyio's own bookkeeping, and can leave the process unable to exit. Received by the event loop
    # instead, a signal cancels the server cleanly.
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()


def _text(text: str, *, error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=error)


def _error(message: str) -> types.CallToolResult:
    return _text(f"Error: {message}", error=True)


def _check_arguments(tool: types.Tool, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Return the arguments given (``null`` counts as not given), checked against the tool's input schema.

    Only what the schemas here use is checked: names, required, ``type``, ``exclusiveMinimum``, ``maximum``.
    Raises :class:`UsageError` naming the parameter, what it must be and what it was.
    """
    properties = tool.input_schema["properties"]
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        raise UsageError(f"unknown parameter '{unknown[0]}'; {tool.name} takes: {', '.join(properties)}")
    given = {name: value for name, value in arguments.items() if value is not None}
    for name in tool.input_schema.get("required", ()):
        if name not in given:
            raise UsageError(f"missing the required parameter '{name}'")
    for name, value in given.items():
        schema = properties[name]
        if not _has_type(value, schema["type"]):
            article = "an" if schema["type"] == "integer" else "a"
            got = json.dumps(value, ensure_ascii=False)
            raise UsageError(f"'{name}' must be {article} {schema['type']}, got {got[:60]}")
        if "exclusiveMinimum" in schema and not value > schema["exclusiveMinimum"]:
            raise UsageError(f"'{name}' must be greater than {schema['exclusiveMinimum']:g}, got {value:g}")
        if "maximum" in schema and value > schema["maximum"]:
            raise UsageError(f"'{name}' must be at most {schema['maximum']:g} on this host, got {value:g}")
    return given


def _has_type(value: Any, expected: str) -> bool:
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "string":
        return isinstance(value, str)
    # bool is an int in Python but not a number in JSON
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return expected == "number" or value == int(value)


# What the person at the client answers when a script wants to write (MCP elicitation, form mode).
_APPROVAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"approve": {"type": "boolean", "title": "Send it",
                               "description": "Send this request to the service (it cannot be undone)"}},
    "required": ["approve"],
}


def _approval_question(request: PermissionRequest) -> str:
    arguments = json.dumps(dict(request.args), ensure_ascii=False, default=str)
    return (f"A script run by the model wants to call {request.function} (account {request.account}), a "
            f"{request.operation}, with {arguments}. Send it?")


def _execute_lua_tool(bridge: Bridge) -> types.Tool:
    limits, ceilings = bridge.limits, bridge.ceilings
    denied = [operation for operation in ("read", "write") if bridge.permissions.decision(operation) == "deny"]
    lines = [
        "Run a Lua 5.4 script in a fresh sandbox and get its report: Output (what it printed), Error, "
        "Return value (the returned value as JSON), Execution time, Integration calls.",
        "",
        'Read the docs before calling a function: lua_read_doc("integrations.<name>") is an integration\'s '
        "full reference, with every function's parameters and examples. Integrations here:",
        *(_integration_lines(bridge) or ["- none"]),
        "",
        "Call a function as app.integrations.<name>.<function>({param = value, ...}); it returns the service's "
        "JSON as Lua tables. app.integrations.<name>.<account>.<function>(...) uses a named account.",
        *([f"This host refuses {' and '.join(denied)} functions: calling one is a permission error."] if denied
          else []),
        "Globals: app, json.encode, json.decode, print (captured into Output), lua_read_doc, lua_list_docs, "
        "lua_search_docs, and the safe standard library (no io, require or os.execute).",
        f"Limits per run: {limits.timeout:g} s, {limits.memory / MiB:g} MiB of Lua memory, {limits.calls} "
        f"integration calls, {limits.output // KiB} KiB of output. The parameters below change the first three "
        "for one run. Reaching a limit ends the run with an error.",
        f"A run also stops after {limits.instructions:,} Lua instructions, which no parameter raises: a busy loop "
        "ends with an 'instructions' error before its time limit, so loop less rather than asking for more time.",
    ]
    schema = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "description": "The Lua script; what it returns comes back as JSON."},
            "timeout": {
                "type": "number", "exclusiveMinimum": 0, "maximum": ceilings.timeout,
                "description": f"Time limit in seconds (default {limits.timeout:g}, at most {ceilings.timeout:g}).",
            },
            "memory_mb": {
                "type": "number", "exclusiveMinimum": 0, "maximum": ceilings.memory / MiB,
                "description": f"Lua memory limit in MiB (default {limits.memory / MiB:g}, "
                               f"at most {ceilings.memory / MiB:g}).",
            },
            "max_calls": {
                "type": "integer", "exclusiveMinimum": 0, "maximum": ceilings.calls,
                "description": f"Integration calls allowed (default {limits.calls}, at most {ceilings.calls}).",
            },
            "dry_run": {
                "type": "boolean",
                "description": "Send reads only: each write is checked and returns {dry_run = true, request = "
                               "{method, path, body}}, the request it would send, without sending it.",
            },
        },
        "required": ["code"],
        "additionalProperties": False,
    }
    return types.Tool(
        name="execute_lua", description="\n".join(lines), input_schema=schema,
        annotations=types.ToolAnnotations(
            title="Run Lua", read_only_hint=bridge.permissions.decision("write") == "deny", open_world_hint=True,
        ),
    )


def _integration_lines(bridge: Bridge) -> list[str]:
    """One line per integration: its name, title, functions and configured accounts."""
    lines = []
    for name, integration in bridge.catalog.integrations.items():
        writes = sum(fn.operation == "write" for fn in integration.functions)
        reads = len(integration.functions) - writes
        accounts = ["default", *sorted(set(bridge.catalog.accounts.get(name, ())) - {"default"})]
        lines.append(f"- {name}: {integration.title}, {reads} read and {writes} write functions; "
                     f"accounts: {', '.join(accounts)}")
    return lines


def _docs_annotations(title: str) -> types.ToolAnnotations:
    return types.ToolAnnotations(title=title, read_only_hint=True, idempotent_hint=True, open_world_hint=False)


def _read_doc_tool(bridge: Bridge) -> types.Tool:
    top = [name for name in bridge.docs.list() if name.count(".") < 2]
    description = (
        "Read a documentation page (markdown), as lua_read_doc(page) does in a script. Before calling an "
        'integration\'s functions, read lua_read_doc("integrations.<name>"), its full reference; '
        '"integrations.<name>.<function>" is one function with its parameters and call forms. '
        f"Without a page: the index of all pages. Top-level pages: {', '.join(top)}."
    )
    schema = {
        "type": "object",
        "properties": {"page": {"type": "string", "description": 'The page name, e.g. "integrations".'}},
        "additionalProperties": False,
    }
    return types.Tool(
        name="lua_read_doc", description=description, input_schema=schema,
        annotations=_docs_annotations("Read a doc page"),
    )


def _list_docs_tool(bridge: Bridge) -> types.Tool:
    example = next((f"integrations.{name}" for name in bridge.catalog.integrations), "integrations")
    description = (
        "List the documentation page names as a sorted JSON array, as lua_list_docs(prefix) does in a script; "
        f'with a prefix, only the pages whose names start with it (e.g. "{example}").'
    )
    schema = {
        "type": "object",
        "properties": {"prefix": {"type": "string", "description": "Only pages whose names start with this."}},
        "additionalProperties": False,
    }
    return types.Tool(
        name="lua_list_docs", description=description, input_schema=schema,
        annotations=_docs_annotations("List doc pages"),
    )


def _search_docs_tool() -> types.Tool:
    description = (
        "Search the documentation for words (case-insensitive), as lua_search_docs(query) does in a script: "
        "the best matching pages first, as a JSON array of {page, title, snippet}. Read a page it finds with "
        "lua_read_doc."
    )
    schema = {
        "type": "object",
        "properties": {"query": {"type": "string", "description": 'Words to look for, e.g. "agent email".'}},
        "required": ["query"],
        "additionalProperties": False,
    }
    return types.Tool(
        name="lua_search_docs", description=description, input_schema=schema,
        annotations=_docs_annotations("Search the docs"),
    )


def _instructions(bridge: Bridge) -> str:
    names = ", ".join(bridge.catalog.integrations) or "no integrations"
    return (
        f"Run Lua scripts that call {names} with execute_lua (app.integrations.<name>.<function>({{...}})). "
        'Read lua_read_doc("integrations.<name>") before calling an integration\'s functions.'
    )
