"""What the figures run against: simulators, bridges over them, an in-process Freshchat, and bare Lua.

The in-process Freshchat is the real integration (its functions, schemas and handlers) with its client
swapped through ``Integration.connect``: a client that answers from memory instead of over HTTP, so a
figure can time the bridge alone.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import lupa.lua54 as lua54
import requests

from integrations.freshchat import integration as freshchat
from integrations.freshchat.simdata import build_dataset
from integrations.freshchat.simulator import Simulator
from luabridge import Account, Bridge, CallContext, RunResult, Secret
from luabridge.toolkit._answers import decode_json

AGENT_ID = "agent-123"
AGENT = next(agent for agent in build_dataset(0).agents if agent["id"] == AGENT_ID)
PAGE_PATH = "/conversations?items_per_page=100"


def checked(result: RunResult) -> RunResult:
    """Return ``result``, or raise when the run failed: a benchmark must never time an error."""
    if result.error is not None:
        raise RuntimeError(f"benchmark script failed: {result.error.type}: {result.error.message}")
    return result


@dataclass(frozen=True)
class Server:
    """Where a simulator in another process listens, and the token it accepts."""

    url: str
    token: str


# An account for bridges whose scripts never reach the network (nothing listens on port 9, discard).
UNUSED = Server("http://127.0.0.1:9/v2", "unused")


@contextmanager
def simulator(faults: str | None = None) -> Iterator[Simulator]:
    """A started simulator (seed 0) on loopback in this process, stopped afterwards; it counts connections."""
    sim = Simulator(seed=0, faults=faults).start()
    try:
        yield sim
    finally:
        sim.stop()


@contextmanager
def simulator_process(faults: str | None = None) -> Iterator[Server]:
    """A simulator served by ``luabridge simulator`` in its own process, as a real service would be.

    Timed figures use this one: a simulator in this process would share the benchmark's interpreter (and
    its GIL) with one side of the comparison and not the other.
    """
    command = [sys.executable, "-m", "luabridge._cli", "simulator", "freshchat"]
    if faults:
        command += ["--faults", faults]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        # It prints "Serving the Freshchat simulator at <url>", then "Token: <token>".
        serving, token = process.stdout.readline().split(), process.stdout.readline()
        if not serving or not serving[-1].startswith("http") or not token.startswith("Token:"):
            raise RuntimeError(f"the simulator did not start: {command} printed {serving} {token!r}")
        yield Server(serving[-1], token.removeprefix("Token:").strip())
    finally:
        process.terminate()
        process.wait()
        process.stdout.close()


def accounts(server: Server | Simulator) -> dict[str, dict[str, Account]]:
    return {"freshchat": {"default": Account("freshchat", "default", server.url, Secret(server.token))}}


@contextmanager
def bridge_over(server: Server | Simulator, *, isolation: bool, workers: int = 1) -> Iterator[Bridge]:
    """A bridge to the simulator; with isolation, ``workers`` worker processes are started first (and as
    many runs may go at once)."""
    with Bridge(accounts(server), integrations=["integrations.freshchat"], isolation=isolation,
                max_workers=max(workers, 8)) as bridge:
        if isolation:
            bridge.prestart(workers)
        yield bridge


def direct_session(server: Server | Simulator) -> tuple[requests.Session, dict[str, str]]:
    """A plain ``requests.Session`` and the headers the bridge's client sends (environment proxies off, as there)."""
    session = requests.Session()
    session.trust_env = False
    return session, {"Accept": "application/json", "Authorization": f"Bearer {server.token}"}


def page_body() -> bytes:
    """The simulator's answer to ``GET /v2/conversations?items_per_page=100``, as bytes off the wire."""
    with simulator() as sim:
        session, headers = direct_session(sim)
        with session:
            response = session.get(sim.url + PAGE_PATH, headers=headers, timeout=10)
    response.raise_for_status()
    return response.content


def count_values(value: Any) -> int:
    """How many values a JSON document holds: every container and every leaf."""
    if isinstance(value, dict):
        return 1 + sum(count_values(child) for child in value.values())
    if isinstance(value, list):
        return 1 + sum(count_values(child) for child in value)
    return 1


class MemoryClient:
    """A Freshchat client that answers from memory: the in-process transport of call_overhead and convert.

    ``get_agent`` returns a fixed agent; ``list_conversations`` decodes a fixed answer body, as the real
    client decodes what arrives (with the toolkit's ``decode_json``).
    """

    def __init__(self, agent: Mapping[str, Any], body: bytes) -> None:
        self.agent = agent
        self.body = body

    def get_agent(self, args: Mapping[str, Any], ctx: CallContext) -> Any:
        return self.agent

    def list_conversations(self, args: Mapping[str, Any], ctx: CallContext) -> Any:
        return decode_json(self.body)


@contextmanager
def in_process_bridge(body: bytes = b"{}") -> Iterator[Bridge]:
    """An in-process bridge over Freshchat whose client is a :class:`MemoryClient` (no HTTP at all)."""
    memory = replace(freshchat, connect=lambda account: MemoryClient(AGENT, body))
    with Bridge(accounts(UNUSED), integrations=[memory], isolation=False) as bridge:
        yield bridge


@contextmanager
def isolated_memory_bridge(workers: int = 1) -> Iterator[Bridge]:
    """A bridge with ``workers`` prestarted worker processes over Freshchat answering from memory
    (:mod:`benchmarks.memory_integration`): each call crosses from the worker to this process and back."""
    with Bridge(accounts(UNUSED), integrations=["benchmarks.memory_integration"], max_workers=workers) as bridge:
        bridge.prestart(workers)
        yield bridge


def bare_runtime() -> Any:
    """A plain Lua 5.4 runtime as lupa makes it, for the baselines."""
    return lua54.LuaRuntime()
