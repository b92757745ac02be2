"""``luabridge serve``: the runner as an HTTP service that scales out behind a load balancer.

A node keeps nothing that another node needs: with ``--redis URL``, account budgets and pauses
(:mod:`luabridge._budgets`), idempotency records and paused runs (:mod:`._state`) live in Redis, so any
node can answer any request. :func:`serve` binds the socket, prints where it serves and runs uvicorn until
SIGTERM or Ctrl-C: then it stops accepting, lets the runs in flight finish (each is bounded by its time
limit) and ends every worker. The app itself is in :mod:`._app`.
"""

from __future__ import annotations

import socket
from typing import Any

from .._bridge import Bridge
from .._pool import KILL_GRACE
from ._app import LOOPBACK, ServeApp
from ._state import IdempotencyRecords, RedisApprovalStore

__all__ = ["LOOPBACK", "RedisApprovalStore", "ServeApp", "connect_redis", "serve"]


def connect_redis(url: str) -> Any:
    """A Redis client for ``url``, checked with a PING so that a wrong URL fails at start, not at a run."""
    import redis

    client = redis.Redis.from_url(url)
    client.ping()
    return client


def serve(bridge: Bridge, *, host: str, port: int, workers: int, queue: int, api_key: str | None,
          redis: Any = None) -> None:
    """Serve ``bridge`` on ``host:port`` until a signal stops it (see the module docstring)."""
    import uvicorn

    app = ServeApp(bridge, workers=workers, queue=queue, api_key=api_key, records=IdempotencyRecords(redis),
                   host=host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # from now on clients queue up; uvicorn answers once the workers are warm
    shown = f"[{host}]" if ":" in host else host
    print(f"Serving luabridge at http://{shown}:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(
        app.asgi(), log_level="warning", access_log=False, lifespan="on",
        # A run in flight may use its whole time limit; the server waits that long, and no longer.
        timeout_graceful_shutdown=int(bridge.ceilings.timeout + KILL_GRACE + 5),
    )
    uvicorn.Server(config).run(sockets=[sock])
