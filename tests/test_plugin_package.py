"""An integration built outside this repository, from luabridge's public names alone, plugs in by installing it.

The test writes a package ``luabridge-tickets`` in a temporary folder (its own ``pyproject.toml`` with an entry
point in ``luabridge.integrations``, a module, a reference page), installs it into a fresh virtual environment
that sees this environment's packages, and runs its ``get_ticket`` through ``Bridge``, ``luabridge run`` and
``luabridge mcp``, against a loopback HTTP server that records exactly what the integration sent. Nothing is
fetched from the internet: the venv has no pip of its own, and the plugin is built with this environment's
setuptools.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

TOKEN = "tickets-key-31d7"
TICKET = {"id": "T-1", "title": "Printer on fire", "status": "open"}

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "luabridge-tickets"
version = "1.0.0"
dependencies = ["luabridge"]

[project.entry-points."luabridge.integrations"]
tickets = "luabridge_tickets"

[tool.setuptools]
packages = ["luabridge_tickets"]

[tool.setuptools.package-data]
luabridge_tickets = ["*.md"]
"""

MODULE = '''\
"""A ticket service as app.integrations.tickets, written against luabridge's public names only."""

from pathlib import Path

from luabridge import AccountScheme, Function, Integration
from luabridge.toolkit import HeaderAuth, ServiceClient, normalize_https_url, path_segment

SCHEME = AccountScheme(
    env_prefix="TICKETS", default_url="https://tickets.invalid/api",
    normalize_url=lambda url: normalize_https_url(url, path="/api"),
)


class TicketsClient:
    def __init__(self, account):
        self.http = ServiceClient(account, auth=HeaderAuth("X-Api-Key"))

    def get_ticket(self, args, ctx):
        ticket = path_segment(args["id"], "parameter 'id'")
        return self.http.get(f"/tickets/{ticket}", ctx)

    def close(self):
        self.http.close()


integration = Integration(
    name="tickets",
    title="Tickets",
    functions=(
        Function(
            name="get_ticket",
            summary="Get one ticket by its id.",
            description="Get one ticket by its id: its title and status.",
            operation="read",
            parameters={
                "type": "object",
                "properties": {"id": {"type": "string", "description": "The ticket's id."}},
                "required": ["id"],
                "additionalProperties": False,
            },
            handler=lambda client, args, ctx: client.get_ticket(args, ctx),
        ),
    ),
    reference=Path(__file__).with_name("reference.md").read_text(encoding="utf-8"),
    accounts=SCHEME,
    connect=TicketsClient,
)
'''

REFERENCE = "# Tickets — Lua API Reference\n\n`app.integrations.tickets.get_ticket(id)` returns one ticket.\n"

SCRIPT = 'local ticket = app.integrations.tickets.get_ticket("T-1")\nreturn ticket.title .. " is " .. ticket.status'


class TicketService(ThreadingHTTPServer):
    """The ticket service on a free loopback port; ``received`` is every request, as (method, path, the
    ``X-Api-Key`` header, the ``Authorization`` header): the token goes where the plugin's auth puts it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _TicketHandler)
        self.received: list[tuple[str, str, str | None, str | None]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}/api"


class _TicketHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.received.append(
            (self.command, self.path, self.headers.get("X-Api-Key"), self.headers.get("Authorization"))
        )
        found = self.path == "/api/tickets/T-1" and self.headers.get("X-Api-Key") == TOKEN
        body = json.dumps(TICKET if found else {"message": "no such ticket"}).encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # keep the test's output clean
        pass


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory) -> Path:
    """The Python of a fresh venv holding the tickets package, beside this environment's luabridge."""
    root = tmp_path_factory.mktemp("plugin")
    package = root / "luabridge-tickets"
    (package / "luabridge_tickets").mkdir(parents=True)
    (package / "pyproject.toml").write_text(PYPROJECT)
    (package / "luabridge_tickets" / "__init__.py").write_text(MODULE)
    (package / "luabridge_tickets" / "reference.md").write_text(REFERENCE)

    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    # addsitedir, not a plain path line: this environment's own .pth files (the editable luabridge) count too.
    here = sysconfig.get_path("purelib")
    (Path(purelib) / "beside-luabridge.pth").write_text(f"import site; site.addsitedir({here!r})\n")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index", "--no-deps",
         "--no-build-isolation", "--disable-pip-version-check", "--quiet", str(package)],
        capture_output=True, text=True, timeout=120,
    )
    assert installed.returncode == 0, installed.stderr
    return python


@pytest.fixture
def service():
    server = TicketService()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def plugin_env(service: TicketService) -> dict[str, str]:
    """The environment of a command in the plugin's venv: the ticket account, no other configuration."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("FRESHCHAT", "LUABRIDGE", "TICKETS", "PYTHON"))}
    return {**env, "TICKETS_URL": service.url, "TICKETS_TOKEN": TOKEN, "HOME": os.devnull}


def luabridge(python: Path, *args: str) -> list[str]:
    """The command line of ``luabridge ARGS`` in the venv of ``python`` (what its console script runs)."""
    return [str(python), "-m", "luabridge._cli", *args]


def test_the_plugin_is_discovered_and_runs_through_bridge(plugin_python, service):
    program = textwrap.dedent(f"""
        import json
        from luabridge import Bridge
        with Bridge.from_env() as bridge:  # worker processes: they load the plugin by its module name
            result = bridge.run({SCRIPT!r})
            print(json.dumps({{
                "integrations": sorted(bridge.catalog.integrations),
                "ok": result.ok, "value": result.value, "error": str(result.error),
                "calls": [[call.function, call.account, call.http_status] for call in result.calls],
                "reference": bridge.run('return lua_read_doc("integrations.tickets")').value,
                "pages": bridge.run('return lua_list_docs("integrations.tickets")').value,
            }}))
    """)
    completed = subprocess.run([plugin_python, "-c", program], env=plugin_env(service),
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    answer = json.loads(completed.stdout)
    assert answer["integrations"] == ["freshchat", "tickets"]  # beside the built-in one, through one door
    assert (answer["ok"], answer["value"], answer["error"]) == (True, "Printer on fire is open", "None")
    assert answer["calls"] == [["tickets.get_ticket", "default", 200]]
    assert answer["reference"] == REFERENCE
    assert answer["pages"] == ["integrations.tickets", "integrations.tickets.default",
                               "integrations.tickets.get_ticket"]
    assert service.received == [("GET", "/api/tickets/T-1", TOKEN, None)]


def test_the_plugin_runs_through_luabridge_run(plugin_python, service):
    completed = subprocess.run(
        luabridge(plugin_python, "run", "--json", "-e",
                  SCRIPT.replace('"T-1"', '"T-404"') + '\n'),
        env=plugin_env(service), capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 1, completed.stderr
    result = json.loads(completed.stdout)
    assert result["error"]["type"] == "http"
    assert result["error"]["message"].startswith("script:1: tickets.get_ticket: HTTP 404")
    assert "no such ticket" in result["error"]["message"]
    assert TOKEN not in completed.stdout

    completed = subprocess.run(luabridge(plugin_python, "run", "-e", SCRIPT), env=plugin_env(service),
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith('Return value: "Printer on fire is open"\n')
    assert service.received == [("GET", "/api/tickets/T-404", TOKEN, None), ("GET", "/api/tickets/T-1", TOKEN, None)]


def test_the_plugin_runs_through_luabridge_mcp(plugin_python, service):
    server = subprocess.Popen(luabridge(plugin_python, "mcp"), env=plugin_env(service), text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def ask(request: dict) -> dict | None:
        server.stdin.write(json.dumps(request) + "\n")
        server.stdin.flush()
        return json.loads(server.stdout.readline()) if "id" in request else None

    try:
        initialized = ask({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}})
        ask({"jsonrpc": "2.0", "method": "notifications/initialized"})
        executed = ask({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                        "params": {"name": "execute_lua", "arguments": {"code": SCRIPT}}})
        reference = ask({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                         "params": {"name": "lua_read_doc", "arguments": {"page": "integrations.tickets"}}})
    finally:
        server.stdin.close()  # how an MCP client stops a stdio server
        server.wait(timeout=30)
        server.stdout.close()
        server.stderr.close()
    assert server.returncode == 0
    assert "tickets" in initialized["result"]["instructions"]
    assert executed["result"]["isError"] is False
    assert executed["result"]["content"][0]["text"].startswith('Return value: "Printer on fire is open"\n')
    assert reference["result"]["content"][0]["text"] == REFERENCE
    assert service.received == [("GET", "/api/tickets/T-1", TOKEN, None)]
