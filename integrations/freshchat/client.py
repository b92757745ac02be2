"""The Freshchat REST API v2 client behind ``app.integrations.freshchat.*``.

One :class:`FreshchatClient` serves one account with one :class:`luabridge.toolkit.ServiceClient`, so its
calls share a keep-alive connection and luabridge's HTTP policy. Each public method takes the validated
arguments of the Lua function of the same name (defaults filled in) and returns the decoded JSON. What the
client adds to Freshchat's answers:

- the reference's words beside Freshchat's own fields (``vocabulary.py``): every conversation carries both
  ``id`` and ``conversation_id`` (Freshchat sends only the latter, the reference's examples read both) and
  an ``inbox_id`` equal to its ``channel_id``; every agent a ``status`` (``available``, ``unavailable``,
  ``offline``); a ``status`` filter word is sent as the Freshchat statuses it stands for, comma-separated
  (``open``: ``new,assigned,reopened``), since the conversation list is undocumented;
- ``get_conversation`` includes the conversation's messages, oldest first, read from
  ``GET /conversations/{id}/messages`` (Freshchat sends them newest first, a page at a time);
- ``get_current_user``: Freshchat has no "who am I" endpoint, so it returns the account configuration
  (``GET /accounts/configuration``) and, when the token is a JWT whose ``sub`` claim names an agent that
  ``GET /agents/{sub}`` resolves, merges in that agent's ``id``, ``first_name``, ``last_name`` and
  ``email``. The JWT is decoded without verification, only to read ``sub``; a failed lookup is ignored.

Path ids must be one path segment (:func:`luabridge.toolkit.path_segment`). Failures are the toolkit's
:class:`RemoteError` messages with Freshchat's ``{code, status, message}`` error body worded as
``HTTP <code> <STATUS>: <message>``; the bridge names the function in front of them.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from luabridge import Account, ArgumentError, CallContext, RemoteError
from luabridge.toolkit import ServiceClient, path_segment

from .vocabulary import status_query, with_agent_fields, with_conversation_fields

AGENT_FIELDS = ("id", "first_name", "last_name", "email")
# Freshchat documents conversation lists only per user; an account may not serve the global one.
NO_CONVERSATION_LIST = {
    404: "this account may not offer GET /v2/conversations (Freshchat documents conversation lists only per "
         "user), or no conversation matches the filters",
}

# get_conversation reads at most this many pages of messages (the newest ones), so a very long thread
# cannot spend the run's time.
MESSAGES_PER_PAGE = 100
MAX_MESSAGE_PAGES = 10

log = logging.getLogger(__name__)


def freshchat_error(body: Any, response: requests.Response) -> tuple[str | None, str | None]:
    """Freshchat's error body ``{"code": 404, "status": "NOT_FOUND", "message": "..."}``: the ``status``
    enum and the message (some endpoints say ``error`` instead)."""
    if not isinstance(body, dict):
        return None, None
    enum = body.get("status") if isinstance(body.get("status"), str) else None
    message = body.get("message") or body.get("error")
    return enum, str(message) if message else None


def create_conversation_request(args: Mapping[str, Any]) -> dict[str, Any]:
    """The request ``create_conversation`` sends for ``args``: its method, its path under the account's URL
    and its JSON body. Dry runs and approvals show it before anything is sent."""
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
    return {"method": "POST", "path": "/conversations", "body": body}


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
        """Serve ``account`` over ``session`` (a new pooled one by default); ``sleep`` and ``clock`` let
        tests run retries without waiting."""
        self.account = account
        self.http = ServiceClient(
            account, error_detail=freshchat_error, session=session, sleep=sleep, clock=clock
        )

    @property
    def session(self) -> requests.Session:
        return self.http.session

    def __repr__(self) -> str:
        return f"FreshchatClient(account={self.account.alias!r}, url={self.account.url!r})"

    def close(self) -> None:
        """Close the session's pooled connections."""
        self.http.close()

    def list_conversations(self, args: Mapping[str, Any], ctx: CallContext) -> Any:
        """One page of conversations, filtered by ``status`` and ``inbox_id`` when given."""
        params = _page(args)
        if args.get("status") is not None:
            params["status"] = status_query(args["status"])
        if args.get("inbox_id") is not None:
            params["inbox_id"] = args["inbox_id"]
        result = self.http.get("/conversations", ctx, params=params, advice=NO_CONVERSATION_LIST)
        for conversation in _listed(result, "conversations"):
            with_conversation_fields(conversation)
        return result

    def get_conversation(self, args: Mapping[str, Any], ctx: CallContext) -> Any:
        """One conversation by id, with its messages oldest first."""
        path = f"/conversations/{_id(args)}"
        conversation = with_conversation_fields(self.http.get(path, ctx))
        if isinstance(conversation, dict):
            conversation["messages"] = self._messages(path, ctx)
        return conversation

    def _messages(self, path: str, ctx: CallContext) -> list[Any]:
        """The conversation's messages, oldest first: up to :data:`MAX_MESSAGE_PAGES` pages of the newest,
        following the answer's ``link`` to the next page."""
        newest_first: list[Any] = []
        for page in range(1, MAX_MESSAGE_PAGES + 1):
            params = {"page": page, "items_per_page": MESSAGES_PER_PAGE}
            answer = self.http.get(f"{path}/messages", ctx, params=params)
            newest_first += _listed(answer, "messages")
            if not isinstance(answer, dict) or not answer.get("link"):
                break
        return newest_first[::-1]

    def create_conversation(self, args: Mapping[str, Any], ctx: CallContext) -> Any:
        """Start a conversation for ``user_id`` with ``initial_message``, in ``channel_id`` when given."""
        request = create_conversation_request(args)
        return with_conversation_fields(self.http.post(request["path"], ctx, json=request["body"]))

    def list_agents(self, args: Mapping[str, Any], ctx: CallContext) -> Any:
        """One page of agents."""
        result = self.http.get("/agents", ctx, params=_page(args))
        for agent in _listed(result, "agents"):
            with_agent_fields(agent)
        return result

    def get_agent(self, args: Mapping[str, Any], ctx: CallContext) -> Any:
        """One agent by id."""
        return with_agent_fields(self.http.get(f"/agents/{_id(args)}", ctx))

    def list_groups(self, args: Mapping[str, Any], ctx: CallContext) -> Any:
        """One page of groups."""
        return self.http.get("/groups", ctx, params=_page(args))

    def get_current_user(self, args: Mapping[str, Any], ctx: CallContext) -> Any:
        """The account configuration, with the token's agent merged in when it can be found."""
        result = self.http.get("/accounts/configuration", ctx)
        agent = self._token_agent(ctx)
        if isinstance(result, dict) and agent is not None:
            result.update({field: agent[field] for field in AGENT_FIELDS if field in agent})
        return result

    def _token_agent(self, ctx: CallContext) -> dict[str, Any] | None:
        """The agent the token's JWT ``sub`` claim names, or ``None``; never fails the call."""
        token = self.account.token.reveal() if self.account.token is not None else None
        subject = _jwt_subject(token)
        if subject is None:
            return None
        try:
            segment = path_segment(subject, "the token's subject")
        except ArgumentError:
            return None
        status = ctx.http_status
        try:
            # One attempt: the lookup is a nicety and must not spend the run's time on retries.
            agent = self.http.get(f"/agents/{segment}", ctx, max_attempts=1)
        except RemoteError as exc:
            log.debug("get_current_user: the token's subject is not a known agent (HTTP %s)", exc.status)
            return None
        finally:
            ctx.http_status = status  # the call log reports the configuration request
        return agent if isinstance(agent, dict) else None


def connect(account: Account) -> FreshchatClient:
    """The integration's client factory: one client, and one connection pool, per account."""
    return FreshchatClient(account)


def _page(args: Mapping[str, Any]) -> dict[str, Any]:
    return {"page": args["page"], "items_per_page": args["per_page"]}


def _id(args: Mapping[str, Any]) -> str:
    """The ``id`` argument as one path segment; raises :class:`ArgumentError` when it cannot be one."""
    return path_segment(args["id"], "parameter 'id'")


def _listed(answer: Any, name: str) -> list[Any]:
    """The list an answer holds under ``name``, or an empty one when it holds none."""
    items = answer.get(name) if isinstance(answer, dict) else None
    return items if isinstance(items, list) else []


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
