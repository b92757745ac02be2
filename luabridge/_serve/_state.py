"""What the nodes of ``luabridge serve`` share: idempotency records and paused runs, in this process or in Redis.

An idempotency record is claimed before its run starts (``SET NX``: one node wins), holds a digest of the
request so that a key reused for another request is refused, and keeps the finished result object for
:data:`IDEMPOTENCY_TTL` seconds. Paused runs use :class:`RedisApprovalStore`, which decides an approval in
one atomic step like the SQLite store does, so two nodes that approve the same id cannot both send its write.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any

from .. import _json
from .._approvals import ApprovalStore, PausedRun, _already_decided
from .._errors import UsageError

IDEMPOTENCY_TTL = 24 * 3600
RUNNING = "running"
_PREFIX = "luabridge:"


class IdempotencyRecords:
    """Claimed keys and stored results: in a dict of this process, or in Redis given a client."""

    def __init__(self, redis: Any = None) -> None:
        self._redis = redis
        self._local: dict[str, tuple[float, str]] = {}  # key -> (expiry, record as JSON)
        self._lock = threading.Lock()

    def claim(self, key: str, digest: str, ttl: float) -> dict[str, Any] | None:
        """Claim ``key`` for a run of the request ``digest`` for ``ttl`` seconds: ``None`` when this caller
        won and must run it, else the record another claim left (``state`` running or done)."""
        record = json.dumps({"state": RUNNING, "digest": digest})
        if self._redis is not None:
            if self._redis.set(_PREFIX + "idem:" + key, record, nx=True, px=int(ttl * 1000)):
                return None
            return self.get(key) or self.claim(key, digest, ttl)  # it expired meanwhile
        with self._lock:
            held = self._local.get(key)
            if held is None or held[0] < time.time():
                self._local[key] = (time.time() + ttl, record)
                return None
            return json.loads(held[1])

    def get(self, key: str) -> dict[str, Any] | None:
        if self._redis is not None:
            text = self._redis.get(_PREFIX + "idem:" + key)
            return json.loads(text) if text is not None else None
        with self._lock:
            held = self._local.get(key)
            return json.loads(held[1]) if held is not None and held[0] >= time.time() else None

    def finish(self, key: str, digest: str, result: dict[str, Any]) -> None:
        """Keep ``result`` as the answer to every later request with ``key``."""
        record = _json.dumps({"state": "done", "digest": digest, "result": result}).decode("utf-8")
        if self._redis is not None:
            self._redis.set(_PREFIX + "idem:" + key, record, ex=IDEMPOTENCY_TTL)
            return
        with self._lock:
            self._local[key] = (time.time() + IDEMPOTENCY_TTL, record)

    def release(self, key: str) -> None:
        """Forget a claim whose run never started (refused before it ran), so a retry can run it."""
        if self._redis is not None:
            self._redis.delete(_PREFIX + "idem:" + key)
            return
        with self._lock:
            self._local.pop(key, None)


# Marks a pending approval decided and returns its run, in one step; an error reply names its state.
_DECIDE = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {err = 'missing'} end
if state ~= 'pending' then
  return {err = 'decided:' .. state .. ':' .. (redis.call('HGET', KEYS[1], 'decided') or '')}
end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'decided', ARGV[2])
return redis.call('HGET', KEYS[1], 'run')
"""


class RedisApprovalStore(ApprovalStore):
    """Paused runs in Redis, so that any node can resume them (see :class:`ApprovalStore`)."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self.path = "redis"  # how messages name the store
        self._decide = redis.register_script(_DECIDE)

    def save(self, run: PausedRun) -> str:
        approval_id = "apr_" + secrets.token_hex(8)
        self._redis.hset(_PREFIX + "approval:" + approval_id, mapping={
            "state": "pending", "created": repr(time.time()), "run": _json.dumps(run.to_json()).decode("utf-8")})
        return approval_id

    def decide(self, approval_id: str, *, approve: bool) -> PausedRun:
        import redis

        state = "approved" if approve else "rejected"
        try:
            text = self._decide(keys=[_PREFIX + "approval:" + approval_id], args=[state, repr(time.time())])
        except redis.ResponseError as exc:
            if str(exc) == "missing":
                raise UsageError(f"no pending approval {approval_id!r}; nothing was sent") from None
            _, was, decided = str(exc).split(":", 2)
            result = self._redis.hget(_PREFIX + "approval:" + approval_id, "result")
            raise UsageError(_already_decided(approval_id, was, float(decided) if decided else None,
                                              result.decode() if result else None)) from None
        return PausedRun.from_json(_json.loads(text))

    def finish(self, approval_id: str, result: dict[str, Any]) -> None:
        self._redis.hset(_PREFIX + "approval:" + approval_id, "result", _json.dumps(result).decode("utf-8"))

    def get(self, approval_id: str) -> dict[str, Any] | None:
        row = self._redis.hgetall(_PREFIX + "approval:" + approval_id)
        if not row:
            return None
        result = row.get(b"result")
        return {"id": approval_id, "state": row[b"state"].decode(), "run": _json.loads(row[b"run"]),
                "result": _json.loads(result) if result else None}
