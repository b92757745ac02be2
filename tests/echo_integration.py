"""A tiny test-only integration: proves the registry is generic, and drives the bridge without HTTP.

It is registered through the same door as the built-in ones (a module with an ``integration``), lives
outside ``integrations/`` and outside ``luabridge/``, and neither of those knows it exists.
"""

from __future__ import annotations

import time

from luabridge import Account, AccountScheme, Function, Integration, LimitExceeded, RemoteError, Secret

ECHO_TOKEN = "echo-token-5f1e9c"

NO_ARGS = {"type": "object", "properties": {}, "additionalProperties": False}


class EchoClient:
    def __init__(self, account):
        self.account = account

    def echo(self, args, ctx):
        return {"args": dict(args), "account": self.account.alias}

    def get_item(self, args, ctx):
        return {"id": args["id"], "tags": [], "parts": [1, None, 3], "missing": None, "nested": {"empty": {}}}

    def store(self, args, ctx):
        return {"stored": args["name"]}

    def fail(self, args, ctx):
        ctx.http_status = 503
        raise RemoteError("echo.fail: HTTP 503 UNAVAILABLE: try later", status=503)

    def boom(self, args, ctx):
        raise KeyError("a bug in the client")

    def nap(self, args, ctx):
        # Host-side code honours the run's deadline (the toolkit's HTTP does): cut short, it says so.
        left = ctx.deadline - time.monotonic()
        if args["seconds"] > left:
            time.sleep(max(0.0, left))
            raise LimitExceeded("echo.nap: the run's time limit was reached", kind="timeout")
        time.sleep(args["seconds"])
        return {"slept": args["seconds"]}


def _function(name, operation="read", properties=None, required=(), summary=None):
    schema = {"type": "object", "properties": properties or {}, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return Function(
        name=name,
        summary=summary or f"The {name} test function.",
        description=f"The {name} test function, for the test suite.",
        operation=operation,
        parameters=schema,
    )


integration = Integration(
    name="echo",
    title="Echo",
    functions=(
        _function("echo", properties={
            "text": {"type": "string", "description": "Anything."},
            "page": {"type": "integer", "minimum": 1, "default": 1, "description": "Page (default: 1)."},
        }),
        _function("get_item", properties={"id": {"type": "string", "description": "The id."}}, required=["id"]),
        _function("store", "write", {"name": {"type": "string", "description": "A name."}}, ["name"]),
        _function("fail"),
        _function("boom"),
        _function("nap", properties={"seconds": {"type": "number", "description": "How long."}}, required=["seconds"]),
    ),
    reference="# Echo — Lua API Reference\n\nA test-only integration.\n",
    accounts=AccountScheme(env_prefix="ECHO", default_url="https://echo.invalid", normalize_url=lambda url: url),
    connect=EchoClient,
)


def echo_accounts() -> dict:
    """A default and a ``work`` account, both configured."""
    return {
        "echo": {
            alias: Account("echo", alias, "https://echo.invalid", Secret(ECHO_TOKEN))
            for alias in ("default", "work")
        }
    }
