"""How the Freshchat simulator's injected faults look: what Freshchat's own broken answers would carry.

The faults themselves (kinds, selectors, the ``--faults`` grammar) are the simulator kit's
:class:`~luabridge.simkit.FaultPlan`, re-exported here for the tests and tools that plan Freshchat faults.
A ``status`` fault answers with Freshchat's error body (``simulator.py`` words it); a ``malformed`` one with
the bodies below; an ``endless`` one with a list of conversations that never ends.
"""

from __future__ import annotations

from luabridge.simkit import FaultPlan, FaultRule

# (content type, body) per malformed variant: a body cut off mid-stream; the login page a wrong host serves.
MALFORMED_BODIES = {
    "json": ("application/json", b'{"conversations": [{"conversation_id": "7f1c2a90-3b'),
    "html": (
        "text/html; charset=utf-8",
        b"<!DOCTYPE html>\n<html><head><title>Freshchat | Login</title></head>\n"
        b"<body><h1>Sign in to your account</h1><form action=\"/login\"></form></body></html>\n",
    ),
}

# The list an endless answer never finishes: {"conversations": [{...}, {...}, ...
ENDLESS_LIST = ("conversations", {"conversation_id": "endless", "status": "assigned"})

__all__ = ["ENDLESS_LIST", "MALFORMED_BODIES", "FaultPlan", "FaultRule"]
