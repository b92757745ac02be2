"""The ASGI app of ``luabridge serve``: runs, docs, approvals, health, metrics and MCP over HTTP.

Every request but ``GET /healthz`` needs ``Authorization: Bearer <key>`` when the app has an API key.
Runs pass a bounded queue in front of the worker pool: a node with every worker busy and its queue full
answers 429 with ``Retry-After`` at once, and a run's wait in the queue counts against none of its limits
(its time limit starts when a worker takes it). See docs/serve.md for the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.to_thread
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .._bridge import Bridge
from .._errors import LookupFailure, UsageError
from .._mcp import create_server
from .._result import RunResult
from .._tracing import finish_span, start_span
from ._metrics import Metrics
from ._state import IdempotencyRecords

LOOPBACK = ("127.0.0.1", "::1", "localhost")
RETRY_AFTER = 1  # seconds a refused client is asked to wait: about one short run
MAX_BODY = 16 * 1024 * 1024  # the largest script the CLI reads, and then some
POLL = 0.05  # how often a retry waits for the run its key claimed to finish


class QueueFull(Exception):
    """Raised when every worker is busy and the queue holds as many runs as it may."""


class RunQueue:
    """At most ``workers`` runs at once and ``depth`` waiting for one; more are refused."""

    def __init__(self, workers: int, depth: int) -> None:
        self.workers, self.depth = workers, depth
        self.busy = 0
        self.queued = 0
        self._slots = asyncio.Semaphore(workers)
        self._threads = anyio.CapacityLimiter(workers)

    async def run(self, work: Callable[[], RunResult]) -> RunResult:
        """Run ``work`` in a thread once a worker is free; raise :class:`QueueFull` when none is and the
        queue is full."""
        if self.busy + self.queued >= self.workers + self.depth:
            raise QueueFull
        self.queued += 1
        try:
            await self._slots.acquire()
        finally:
            self.queued -= 1
        self.busy += 1
        try:
            return await anyio.to_thread.run_sync(work, limiter=self._threads)
        finally:
            self.busy -= 1
            self._slots.release()


class ServeApp:
    """The app's state over one bridge: queue, idempotency records, metrics and readiness."""

    def __init__(self, bridge: Bridge, *, workers: int, queue: int, api_key: str | None,
                 records: IdempotencyRecords, host: str = "127.0.0.1") -> None:
        self.bridge = bridge
        self.workers = workers
        self.queue = RunQueue(workers, queue)
        self.records = records
        self.api_key = api_key
        self.ready = False
        self.metrics = Metrics(lambda: {"busy": self.queue.busy, "idle": self.workers - self.queue.busy,
                                        "queued": self.queue.queued})
        self.mcp = StreamableHTTPSessionManager(
            app=create_server(bridge), stateless=True, json_response=True, security_settings=_security(host))

    def asgi(self) -> Starlette:
        routes = [
            Route("/v1/runs", self.runs, methods=["POST"]),
            Route("/v1/docs", self.docs, methods=["GET"]),
            Route("/v1/docs/{page:path}", self.docs, methods=["GET"]),
            Route("/v1/approvals/{approval_id}", self.approval, methods=["POST"]),
            Route("/healthz", self.health, methods=["GET"]),
            Route("/metrics", self.render_metrics, methods=["GET"]),
            Route("/mcp", _MCPEndpoint(self.mcp), methods=["GET", "POST", "DELETE"]),
        ]
        app = Starlette(routes=routes, lifespan=self._lifespan)
        return _Authenticated(app, self.api_key) if self.api_key else app

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if self.bridge.isolation:
            await anyio.to_thread.run_sync(self.bridge.prestart, self.workers)
        self.ready = True
        try:
            async with self.mcp.run():
                yield
        finally:
            # Runs in flight have finished (the server waits for them before this); end every worker.
            self.ready = False
            await anyio.to_thread.run_sync(self.bridge.close)

    async def runs(self, request: Request) -> Response:
        body = await _body(request)
        if isinstance(body, Response):
            return body
        code, limits, dry_run = body.get("code"), body.get("limits") or {}, body.get("dry_run", False)
        unknown = sorted(set(body) - {"code", "limits", "dry_run"})
        if unknown:
            return _problem(400, f"unknown field {unknown[0]!r}; a run takes code, limits and dry_run")
        if not isinstance(code, str):
            return _problem(400, "'code' must be the script as a string")
        if not isinstance(limits, dict) or not isinstance(dry_run, bool):
            return _problem(400, "'limits' must be an object such as {\"timeout\": 5} and 'dry_run' a boolean")
        work = functools.partial(self._traced, self.bridge.run, code, limits=limits, dry_run=dry_run)
        return await self._answer(request, body, work)

    async def approval(self, request: Request) -> Response:
        approval_id = request.path_params["approval_id"]
        body = await _body(request)
        if isinstance(body, Response):
            return body
        if set(body) != {"approve"} or not isinstance(body["approve"], bool):
            return _problem(400, 'an approval takes {"approve": true} or {"approve": false}')
        stored = self.bridge._approvals.get(approval_id)
        if stored is None:
            return _problem(404, f"no pending approval {approval_id!r}; nothing was sent")
        if stored["state"] != "pending":
            return _problem(409, f"approval {approval_id!r} was already {stored['state']}; an approval is used once")
        work = functools.partial(self._traced, self.bridge.resume, approval_id, approve=body["approve"])
        return await self._answer(request, {"approval": approval_id, **body}, work, conflict=409)

    def _traced(self, run: Callable[..., RunResult], *args: Any, **options: Any) -> RunResult:
        span = start_span("luabridge.run", {"luabridge.dry_run": bool(options.get("dry_run"))})
        result = run(*args, **options)
        self.metrics.observe(result)
        finish_span(span, **{"luabridge.outcome": "ok" if result.ok else result.error.type,
                             "luabridge.calls": len(result.calls)})
        return result

    async def _answer(self, request: Request, body: dict[str, Any], work: Callable[[], RunResult],
                      conflict: int = 400) -> Response:
        """Run ``work`` through the queue, once per ``Idempotency-Key``, and answer its result object."""
        key = request.headers.get("idempotency-key")
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        if key:
            held = await anyio.to_thread.run_sync(self.records.claim, key, digest, self._claim_ttl())
            if held is not None:
                return await self._stored(key, digest, held)
        try:
            result = await self.queue.run(work)
        except QueueFull:
            self.metrics.refuse("queue_full")
            if key:
                await anyio.to_thread.run_sync(self.records.release, key)
            return _problem(429, f"all {self.workers} workers are busy and the queue of {self.queue.depth} is "
                            "full; retry later", headers={"Retry-After": str(RETRY_AFTER)})
        except UsageError as exc:
            if key:
                await anyio.to_thread.run_sync(self.records.release, key)
            return _problem(conflict, str(exc))
        payload = result.to_json()
        if key:
            await anyio.to_thread.run_sync(self.records.finish, key, digest, payload)
        return JSONResponse(payload)

    def _claim_ttl(self) -> float:
        # Long enough for a run that waits its turn and uses all its time; a crashed node's claim expires.
        return self.bridge.ceilings.timeout * 4 + 60

    async def _stored(self, key: str, digest: str, held: dict[str, Any]) -> Response:
        """The answer to a retry: the stored result, once the run its key claimed has finished."""
        if held.get("digest") != digest:
            return _problem(422, "this Idempotency-Key was used for another request; use a new key")
        waited = 0.0
        while held.get("state") != "done" and waited < self._claim_ttl():
            await asyncio.sleep(POLL)
            waited += POLL
            held = await anyio.to_thread.run_sync(self.records.get, key) or {}
            if not held:
                return _problem(409, "the run for this Idempotency-Key did not start; retry",
                                headers={"Retry-After": str(RETRY_AFTER)})
        if held.get("state") != "done":
            return _problem(409, "the run for this Idempotency-Key is still going", headers={"Retry-After": "1"})
        return JSONResponse(held["result"], headers={"Idempotent-Replayed": "true"})

    async def docs(self, request: Request) -> Response:
        page = request.path_params.get("page")
        try:
            text = self.bridge.docs.read(page) if page else self.bridge.docs.index()
        except LookupFailure as exc:
            return PlainTextResponse(exc.message, status_code=404)
        return Response(text, media_type="text/markdown; charset=utf-8")

    async def health(self, request: Request) -> Response:
        if not self.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ready", "workers": self.workers, "busy": self.queue.busy,
                             "queued": self.queue.queued})

    async def render_metrics(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


class _MCPEndpoint:
    """``/mcp`` handed to the SDK's Streamable HTTP transport (an ASGI app, so Starlette passes it through)."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.manager.handle_request(scope, receive, send)


class _Authenticated:
    """Refuses every request without the API key as a bearer token, except the health check."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.expected = f"Bearer {api_key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/healthz":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                response = _problem(401, "a valid API key is needed: send Authorization: Bearer <key>",
                                    headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _security(host: str) -> TransportSecuritySettings:
    """On loopback, the SDK's DNS-rebinding protection; elsewhere the API key guards the door."""
    if host not in LOOPBACK:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )


async def _body(request: Request) -> dict[str, Any] | Response:
    data = await request.body()
    if len(data) > MAX_BODY:
        return _problem(413, f"the request body is larger than {MAX_BODY // (1024 * 1024)} MiB")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return _problem(400, "the request body must be a JSON object")
    if not isinstance(body, dict):
        return _problem(400, "the request body must be a JSON object")
    return body


def _problem(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)
