"""A kit for simulating an integration's REST service on loopback, with injectable faults.

An integration's simulator subclasses :class:`SimServer` and supplies only what is its service's own: its
routes (:meth:`SimServer.routes`, handlers that return an :class:`Answer` or raise :class:`ServiceError`),
the shape of its error body (:meth:`SimServer.error_body`) and, optionally, its base path, rate limit and
the bodies of its malformed answers. The kit gives it the rest: start, stop and context management on a
free port, the requests it received and the connections it accepted, a bearer-token check, and a
:class:`FaultPlan` (latency, error statuses, malformed bodies, dropped connections, huge and gzip-bombed
bodies, endless and trickled answers) consulted before every answer::

    class Items(SimServer):
        base_path = "/v1"

        def routes(self, request):
            match request.segments:
                case ["v1", "items"]:
                    return {"GET": lambda: Answer(200, {"items": []})}
            return {}

    with Items(token="t", faults="503:times=1") as server:
        ...  # requests to server.url + "/items" with "Authorization: Bearer t"

The fault grammar is in :mod:`luabridge.simkit._faults`.
"""

from __future__ import annotations

from ._answers import Answer, Page, ReceivedRequest, ServiceError, query_int
from ._faults import KINDS, Decision, FaultPlan, FaultRule
from ._server import REDACTED, Routes, SimServer
from ._streams import MIN_SIZE

__all__ = [
    "Answer",
    "Decision",
    "FaultPlan",
    "FaultRule",
    "KINDS",
    "MIN_SIZE",
    "Page",
    "REDACTED",
    "ReceivedRequest",
    "Routes",
    "ServiceError",
    "SimServer",
    "query_int",
]
