"""Freshchat answering from memory, as a module: what worker processes load for the isolated figures.

A worker loads integrations by module name, so the in-process trick of swapping the client object
(:func:`~benchmarks.fixtures.in_process_bridge`) needs a module to name. Its client is the same
:class:`~benchmarks.fixtures.MemoryClient`: ``get_agent`` returns the simulator's agent-123.
"""

from __future__ import annotations

from dataclasses import replace

from integrations.freshchat import integration as freshchat

from .fixtures import AGENT, MemoryClient

integration = replace(freshchat, connect=lambda account: MemoryClient(AGENT, b"{}"))
