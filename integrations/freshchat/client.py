"""The Freshchat REST API v2 client behind ``app.integrations.freshchat.*``.

One :class:`FreshchatClient` serves one account with one ``requests.Session``, so its calls share a
keep-alive connection. Each public method takes the validated arguments of the Lua function of the same
name (defaults filled in) and returns the decoded JSON. What the client adds to Freshchat's answers:

- every conversation object carries both ``id`` and ``conversation_id`` (Freshchat sends only the latter,
  the reference's examples read both);
- ``get_current_user``: Freshchat has no "who am I" endpoint, so it returns the account configuration
  (``GET /accounts/configuration``) and, when the token is a JWT whose ``sub`` claim names an agent that
  ``GET /agents/{sub}`` resolves, merges in that agent's ``id``, ``first_name``, ``last_name`` and
  ``email``. The JWT is decoded without verification, only to read ``sub``; a failed lookup is ignored.

Path ids must be one path segment: not empty, at most 256 characters, without ``/``, ``\\``, ``?``, ``#``,
``..``, control characters or percent-escapes; anything else is rejected before a request is sent.
Failures become :class:`RemoteError` messages naming the function, the HTTP status and Freshchat's error,
with advice when the account's URL or token is the likely cause; a run's limit reached during a request (an
answer too large, the deadline) stays a :class:`LimitExceeded`, named after the function the same way.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from luabridge._config import env_variable
from luabridge._errors import ArgumentError, LimitExceeded, RemoteError
from luabridge._http import new_session, redact, send
from luabridge._registry import Account, CallContext

from .accounts import SCHEME

MAX_ID_LENGTH = 256
AGENT_FIELDS = ("id", "first_name", "last_name", "email")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_QUOTED = 300  # at most this many characters of a server's text are quoted in a message

log = logging.getLogger(__name__)


class FreshchatClient:
    """Calls Freshchat's REST API v2 for one account; one method per Lua function."""

    def __init__(
        self,
        account: Account,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Serve ``account`` over ``session`` (a new pooled one by default).

        ``sleep`` and ``clock`` are handed to :func:`luabridge._http.send`, so tests can run retries
        without waiting.
        """
        self.account = account
        self.session = session if session is not None else new_session()
        self._sleep = sleep
        self._clock = clock

    def __repr__(self) -> str:
        return f"FreshchatClient(account={self.account.alias!r}, url={self.account.url!r})"

    def close(self) -> None:
        """Close the session's pooled connections."""
        self.session.close()

    def list_conversations(self, args: Mapping[str, Any], ctx: CallContext) -> Any:
        """One page of conversations, filtered by ``status`` and ``inbox_id`` when given."""
        params = _page(args)
        params.update({name: args[name] for name in ("status", "inbox_id") if args.get(name) is not None})
        result = self._call("list_conversations", "GET", "/conversations", ctx, params=params)
        conversations = result.get("conversations") if isinstance(result, dict) else None
        for conversation in conversations if isinstance(conversations, list) else ():
            _both_ids(conversation)
        return result

    def get_conversation(self, args: Mapping[str, Any], ctx: CallContext) -> Any:
        """One conversation by id."""
        path = f"/conversations/{_segment('get_conversation', 'id', args['id'])}"
        return _both_ids(self._call("get_conversation", "GET", path, ctx))

    def create_conversation(self, args: Mapping[str, Any], ctx: CallContext) -> Any:
        """Start a conversation for ``user_id`` with ``initial_message``, in ``channel_id`` when given."""
        user_id = args["user_id"]
        message: dict[str, Any] = {
            "message_parts": [{"text": {"content": args["initial_message"]}}],
            "message_type": "normal",
            "actor_type": "user",
            "actor_id": user_id,
        }
        body: dict[str, Any] = {"users": [{"id": user_id}], "messages": [message]}
        if args.get("channel_id") is not None:
            body["channel_id"] = message["channel_id"] = args["channel_id"]
        return _both_ids(self._call("create_conversation", "POST", "/conversations", ctx, body=body))

    def list_agents(self, args: Mapping[str, Any], ctx: CallContext) -> Any:
        """One page of agents."""
        return self._call("list_agents", "GET", "/agents", ctx, params=_page(args))

    def get_agent(self, args: Mapping[str, Any], ctx: CallContext) -> Any:
        """One agent by id."""
        return self._call("get_agent", "GET", f"/agents/{_segment('get_agent', 'id', args['id'])}", ctx)

    def list_groups(self, args: Mapping[str, Any], ctx: CallContext) -> Any:
        """One page of groups."""
        return self._call("list_groups", "GET", "/groups", ctx, params=_page(args))

    def get_current_user(self, args: Mapping[str, Any], ctx: CallContext) -> Any:
        """The account configuration, with the token's agent merged in when it can be found."""
        result = self._call("get_current_user", "GET", "/accounts/configuration", ctx)
        agent = self._token_agent(ctx)
        if isinstance(result, dict) and agent is not None:
            result.update({field: agent[field] for field in AGENT_FIELDS if field in agent})
        return result

    def _token_agent(self, ctx: CallContext) -> dict[str, Any] | None:
        """The agent the token's JWT ``sub`` claim names, or ``None``; never fails the call."""
        subject = _jwt_subject(self._token())
        if subject is None or _id_problem(subject) is not None:
            return None
        status = ctx.http_status
        try:
            # One attempt: the lookup is a nicety and must not spend the run's time on retries.
            agent = self._call(
                "get_current_user", "GET", f"/agents/{quote(subject, safe='')}", ctx, max_attempts=1
            )
        except RemoteError as exc:
            log.debug("get_current_user: the token's subject is not a known agent (HTTP %s)", exc.status)
            return None
        finally:
            ctx.http_status = status  # the call log reports the configuration request
        return agent if isinstance(agent, dict) else None

    def _call(
        self,
        fn: str,
        method: str,
        path: str,
        ctx: CallContext,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        max_attempts: int = 4,
    ) -> Any:
        """Send one request for Lua function ``fn`` and return the decoded answer, or raise RemoteError."""
        label = f"freshchat.{fn}"
        if ctx.account != self.account:
            # send() takes the token from ctx; it must be the token of the account this URL belongs to.
            raise ValueError(f"{label}: a call for account {ctx.account.alias!r} reached the client of "
                             f"account {self.account.alias!r}")
        try:
            response = send(
                self.session, method, self.account.url + path, ctx=ctx, params=params, json=body,
                max_attempts=max_attempts, sleep=self._sleep, clock=self._clock,
            )
        except RemoteError as exc:
            raise RemoteError(f"{label}: {exc.message}", status=exc.status) from exc
        except LimitExceeded as exc:
            raise LimitExceeded(f"{label}: {exc.message}", kind=exc.kind) from exc
        return self._decode(label, fn, response)

    def _decode(self, label: str, fn: str, response: requests.Response) -> Any:
        status = response.status_code
        if 300 <= status < 400:
            raise RemoteError(self._redirected(label, response), status=status)
        if status >= 400:
            raise RemoteError(self._failed(label, fn, response), status=status)
        if not response.content.strip():
            return {}
        try:
            return json.loads(response.content)
        except ValueError as exc:
            raise RemoteError(self._not_json(label, response), status=status) from exc

    def _failed(self, label: str, fn: str, response: requests.Response) -> str:
        """Word an error answer: Freshchat's ``{code, status, message}``, or whatever came instead."""
        status = response.status_code
        try:
            body = json.loads(response.content) if response.content.strip() else None
        except ValueError:
            text = self._not_json(label, response)
        else:
            text = f"{label}: HTTP {status}{self._error_detail(body, response)}"
        alias = self.account.alias
        if status in (401, 403):
            text += f"; check the token of account '{alias}' ({env_variable(SCHEME, alias, 'TOKEN')})"
        elif status == 404 and fn == "list_conversations":
            text += ("; this account may not offer GET /v2/conversations (Freshchat documents conversation "
                     "lists only per user), or no conversation matches the filters")
        elif status == 429:
            text += "; rate limited: the retries this run allows are used up, wait before calling again"
        return text

    def _error_detail(self, body: Any, response: requests.Response) -> str:
        """What follows ``HTTP <status>``: `` ENUM: message``, ``: <other JSON>`` or the reason phrase."""
        if body is None:
            return f" {response.reason}" if response.reason else ""
        if isinstance(body, dict):
            enum = body.get("status") if isinstance(body.get("status"), str) else None
            message = body.get("message") or body.get("error")
            if enum or message:
                detail = f" {self._quote(enum)}" if enum else ""
                return detail + (f": {self._quote(str(message))}" if message else "")
        return f": {self._quote(json.dumps(body, ensure_ascii=False))}"

    def _redirected(self, label: str, response: requests.Response) -> str:
        location = response.headers.get("Location", "")
        try:
            target = urlsplit(location).hostname
        except ValueError:
            target = None
        where = self._quote(target) if target else "another address on the same host"
        return (f"{label}: HTTP {response.status_code}: the request was redirected to {where}; redirects "
                f"are not followed so the token is not sent elsewhere; check the URL of account "
                f"'{self.account.alias}' ({self.account.url})")

    def _not_json(self, label: str, response: requests.Response) -> str:
        """Word a body that is not JSON (an HTML page, or text): the URL is most likely wrong."""
        head = response.content[: _QUOTED * 4].decode("utf-8", "replace").strip()
        if "html" in response.headers.get("Content-Type", "").lower() or head.startswith("<"):
            kind = "an HTML page"
        else:
            kind = f'the text "{self._quote(head)}"'
        return (f"{label}: HTTP {response.status_code} with {kind}, not JSON; the URL of account "
                f"'{self.account.alias}' ({self.account.url}) is probably wrong")

    def _quote(self, text: str) -> str:
        """A server's text made safe to repeat: the token removed, one line, no control characters, short."""
        text = " ".join(redact(text, self._token()).split())
        # An escape sequence from a hostile server must not reach the terminal that prints the error.
        text = "".join(f"\\x{ord(char):02x}" if unicodedata.category(char) == "Cc" else char for char in text)
        return text if len(text) <= _QUOTED else text[: _QUOTED - 3] + "..."

    def _token(self) -> str | None:
        return self.account.token.reveal() if self.account.token is not None else None


def connect(account: Account) -> FreshchatClient:
    """The integration's client factory: one client, and one connection pool, per account."""
    return FreshchatClient(account)


def _page(args: Mapping[str, Any]) -> dict[str, Any]:
    return {"page": args["page"], "items_per_page": args["per_page"]}


def _both_ids(conversation: Any) -> Any:
    """Give a conversation object both ``id`` and ``conversation_id``, copying whichever it has."""
    if isinstance(conversation, dict):
        if "conversation_id" in conversation:
            conversation.setdefault("id", conversation["conversation_id"])
        elif "id" in conversation:
            conversation["conversation_id"] = conversation["id"]
    return conversation


def _segment(fn: str, parameter: str, value: str) -> str:
    """Percent-encode ``value`` as one path segment; raise ArgumentError when it cannot be one."""
    problem = _id_problem(value)
    if problem is not None:
        raise ArgumentError(f"freshchat.{fn}: parameter '{parameter}' {problem}")
    return quote(value, safe="")


def _id_problem(value: str) -> str | None:
    """Why ``value`` cannot be an id in a path, or ``None`` when it can."""
    if not value:
        return "must not be empty"
    if len(value) > MAX_ID_LENGTH:
        return f"must be at most {MAX_ID_LENGTH} characters long (got {len(value)})"
    shown = json.dumps(value if len(value) <= 40 else value[:40] + "...")  # escapes every control character
    for separator in ("/", "\\", "?", "#"):
        if separator in value:
            return f"must not contain '{separator}': an id is a single path segment (got {shown})"
    if ".." in value or value == ".":
        return f"must not be '.' or contain '..' (got {shown})"
    if any(unicodedata.category(char) == "Cc" for char in value):
        return f"must not contain control characters (got {shown})"
    if _PERCENT_ESCAPE.search(value):
        # Servers that decode twice would turn %2F into a separator; the id is encoded for the caller.
        return f"must not contain percent-escapes such as %2F; pass the id itself (got {shown})"
    return None


def _jwt_subject(token: str | None) -> str | None:
    """The ``sub`` claim of a JWT, read without verifying the signature, or ``None``."""
    parts = (token or "").split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject if isinstance(subject, str) and subject else None
