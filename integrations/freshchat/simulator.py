"""Serve a Freshchat-compatible REST API v2 on loopback, with seeded data and injectable faults.

:class:`Simulator` is a :class:`luabridge.simkit.SimServer` that speaks the wire mapping ``client.py`` sends:
it serves the data of :func:`~integrations.freshchat.simdata.build_dataset`, paginates with Freshchat's
``pagination`` and ``links``, answers errors with Freshchat's ``{"code", "status", "message"}`` body and
reports ``X-RateLimit-*`` headers. The kit gives it keep-alive HTTP/1.1, the bearer-token check, the record
of every request (``received``, ``count``), the connection count and the fault plans (``faults``).

Routes (all under ``/v2``): ``GET conversations`` (``page``, ``items_per_page``, ``status``, ``inbox_id``),
``POST conversations``, ``GET conversations/{id}``, ``GET conversations/{id}/messages``, ``GET agents``,
``GET agents/{id}``, ``GET groups``, ``GET channels``, ``GET users/{id}``, ``GET accounts/configuration``.
Created conversations answer ``201``; an unknown user or channel in a create answers ``404``. The seeded data
is the same on every start, but created conversations get ids no other simulator handed out (drawn from the
system's randomness), so ids from one demo run never meet another run's.

Conversations carry Freshchat's statuses (:data:`~integrations.freshchat.vocabulary.FRESHCHAT_STATUSES`);
the list's ``status`` filter takes one or several of them, comma-separated, in any case.
"""

from __future__ import annotations

import random
import threading
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

from luabridge.simkit import Answer, FaultPlan, Page, ReceivedRequest, Routes, ServiceError, SimServer, query_int

from .simdata import Dataset, build_dataset, new_conversation
from .simfaults import ENDLESS_LIST, MALFORMED_BODIES
from .vocabulary import FRESHCHAT_STATUSES

MAX_ITEMS_PER_PAGE = 100
DEFAULT_ITEMS_PER_PAGE = 10
INVALID = "INVALID_VALUE"  # Freshchat's code for a request it cannot accept


def _bad(message: str) -> ServiceError:
    return ServiceError(400, message, code=INVALID)


def paginate(name: str, items: list[Any], query: dict[str, str], base: str,
             filters: dict[str, str] | None = None) -> dict[str, Any]:
    """Return one page of ``items`` in Freshchat's list envelope ``{name: [...], pagination, links}``.

    ``filters`` are repeated in the links' hrefs, which put their parameters in alphabetical order as
    Freshchat does (``/v2/agents?items_per_page=10&page=2``). Raises a 400 :class:`ServiceError` for a bad
    ``page`` or ``items_per_page``.
    """
    number = query_int(query, "page", default=1, code=INVALID)
    per_page = query_int(query, "items_per_page", default=DEFAULT_ITEMS_PER_PAGE, maximum=MAX_ITEMS_PER_PAGE,
                         code=INVALID)
    page = Page.of(items, number, per_page)

    def link(to: int, rel: str) -> dict[str, str]:
        params = {**(filters or {}), "items_per_page": per_page, "page": to}
        return {"href": f"{base}?{urlencode(sorted(params.items()))}", "rel": rel, "type": "GET"}

    links = {"first_page": link(1, "first_page")}
    if page.previous is not None:
        links["previous_page"] = link(page.previous, "previous_page")
    if page.next is not None:
        links["next_page"] = link(page.next, "next_page")
    links["last_page"] = link(page.last, "last_page")
    return {
        name: page.items,
        "pagination": {"total_items": page.total_items, "total_pages": page.total_pages,
                       "current_page": number, "items_per_page": per_page},
        "links": links,
    }


class Simulator(SimServer):
    """A Freshchat REST API v2 server on ``host:port`` (``port=0`` picks a free one), bound on creation.

    ``token`` defaults to the dataset's JWT-shaped token, whose ``sub`` claim is an agent id, so
    ``GET /v2/agents/{sub}`` resolves the token's holder. ``faults`` is a :class:`~luabridge.simkit.FaultPlan`
    or a spec for :meth:`~luabridge.simkit.FaultPlan.parse`; it stays reachable as ``sim.faults`` to change
    between requests.
    """

    base_path = "/v2"
    server_version = "FreshchatSimulator/1.0"
    rate_limit = 5000  # reported in X-RateLimit-* headers; only injected faults ever answer 429
    invalid_request_code = INVALID
    malformed_bodies = MALFORMED_BODIES
    endless_list = ENDLESS_LIST

    def __init__(self, *, seed: int = 0, token: str | None = None, host: str = "127.0.0.1", port: int = 0,
                 faults: FaultPlan | str | None = None) -> None:
        self.seed = seed
        self.dataset: Dataset = build_dataset(seed)
        self._lock = threading.Lock()  # guards the conversations, their messages and the created list
        self._created: list[dict[str, Any]] = []
        self._rng = random.Random()  # seeded from the system: created ids differ from run to run
        self._conversations = list(self.dataset.conversations)
        self._messages = {cid: list(thread) for cid, thread in self.dataset.messages.items()}
        self._index = {
            kind: {item["id"]: item for item in items}
            for kind, items in (("agent", self.dataset.agents), ("user", self.dataset.users),
                                ("channel", self.dataset.channels))
        }
        self._index["conversation"] = {c["conversation_id"]: c for c in self._conversations}
        self._next_internal_id = (max(c["conversation_internal_id"] for c in self._conversations)
                                  + self._rng.randrange(10**6))
        super().__init__(token=token if token is not None else self.dataset.token, host=host, port=port,
                         faults=faults)

    def __repr__(self) -> str:
        return f"<Simulator {self.url} seed={self.seed}>"

    @property
    def created(self) -> list[dict[str, Any]]:
        """The conversations created through ``POST /v2/conversations``, oldest first; kept by ``reset_counters``."""
        with self._lock:
            return list(self._created)

    def error_body(self, error: ServiceError) -> dict[str, Any]:
        """Freshchat's error body: the HTTP ``code``, the ``status`` enum and a ``message``."""
        return {"code": error.status, "status": error.code, "message": error.message}

    # -- the API ----------------------------------------------------------------------------------------

    def routes(self, request: ReceivedRequest) -> Routes:
        """The handlers of the endpoint at the request's segments, by method; empty when none."""
        query, body = request.query, request.body
        match request.segments:
            case ["v2", "conversations"]:
                return {"GET": lambda: self._list_conversations(query), "POST": lambda: self._create(body)}
            case ["v2", "conversations", cid]:
                return {"GET": lambda: Answer(200, self._find("conversation", cid))}
            case ["v2", "conversations", cid, "messages"]:
                return {"GET": lambda: self._list_messages(cid, query)}
            case ["v2", "agents"]:
                return {"GET": lambda: self._list("agents", query)}
            case ["v2", "agents", agent_id]:
                return {"GET": lambda: Answer(200, self._find("agent", agent_id))}
            case ["v2", "groups"]:
                return {"GET": lambda: self._list("groups", query)}
            case ["v2", "channels"]:
                return {"GET": lambda: self._list("channels", query)}
            case ["v2", "users", user_id]:
                return {"GET": lambda: Answer(200, self._find("user", user_id))}
            case ["v2", "accounts", "configuration"]:
                return {"GET": lambda: Answer(200, self.dataset.account)}
        return {}

    def _list(self, name: str, query: dict[str, str]) -> Answer:
        return Answer(200, paginate(name, getattr(self.dataset, name), query, f"/v2/{name}"))

    def _find(self, kind: str, item_id: str) -> dict[str, Any]:
        with self._lock:
            item = self._index[kind].get(item_id)
        if item is None:
            raise ServiceError(404, f"{kind} not found", code=f"{kind.upper()}_NOT_FOUND")
        return item

    def _list_conversations(self, query: dict[str, str]) -> Answer:
        filters = {name: query[name] for name in ("status", "inbox_id") if name in query}
        statuses = {word.strip().lower() for word in filters["status"].split(",")} if "status" in filters else None
        unknown = sorted((statuses or set()) - set(FRESHCHAT_STATUSES))
        if unknown:
            raise _bad(f"status must be one or more of {', '.join(FRESHCHAT_STATUSES)} (comma-separated), "
                       f"got {', '.join(map(repr, unknown))}")
        with self._lock:
            conversations = list(self._conversations)
        matching = [c for c in conversations
                    if (statuses is None or c["status"] in statuses)
                    and c["channel_id"] == filters.get("inbox_id", c["channel_id"])]
        return Answer(200, paginate("conversations", matching, query, "/v2/conversations", filters))

    def _list_messages(self, cid: str, query: dict[str, str]) -> Answer:
        """Messages newest first, paged like Freshchat's with a single ``link`` to the next page."""
        self._find("conversation", cid)
        with self._lock:
            thread = self._messages.get(cid, [])[::-1]
        page = paginate("messages", thread, query, f"/v2/conversations/{quote(cid, safe='')}/messages")
        answer: dict[str, Any] = {"messages": page["messages"]}
        if "next_page" in page["links"]:
            answer["link"] = page["links"]["next_page"]
        return Answer(200, answer)

    def _create(self, body: Any) -> Answer:
        """Validate and store a conversation as ``POST /v2/conversations`` does; answer 201 with it."""
        if not isinstance(body, dict):
            raise _bad("the request body must be a JSON object")
        users, messages = body.get("users"), body.get("messages")
        channel_id = body.get("channel_id", self.dataset.channels[0]["id"])
        if not isinstance(users, list) or not users or not all(
                isinstance(u, dict) and isinstance(u.get("id"), str) for u in users):
            raise _bad("users must be a non-empty list of {\"id\": <user id>}")
        if not isinstance(messages, list) or not messages:
            raise _bad("messages must be a non-empty list; a conversation starts with a message")
        if not isinstance(channel_id, str):
            raise _bad("channel_id must be a string")
        user_ids = [u["id"] for u in users]
        for index, message in enumerate(messages):
            _check_message(message, f"messages[{index}]", user_ids, self._index["agent"])
        for user_id in user_ids:
            self._find("user", user_id)
        self._find("channel", channel_id)
        with self._lock:
            self._next_internal_id += 1
            conv, thread = new_conversation(self.dataset.account, self._rng, self._next_internal_id,
                                            channel_id, user_ids, messages, datetime.now(timezone.utc))
            self._conversations.insert(0, conv)
            self._index["conversation"][conv["conversation_id"]] = conv
            self._messages[conv["conversation_id"]] = thread
            self._created.append(conv)
        return Answer(201, {**conv, "users": [{"id": user_id} for user_id in user_ids], "messages": thread})


def _check_message(message: Any, where: str, user_ids: list[str], agents: dict[str, Any]) -> None:
    """Raise a 400 ServiceError unless ``message`` is a message Freshchat would accept in a create."""
    if not isinstance(message, dict):
        raise _bad(f"{where} must be an object")
    parts = message.get("message_parts")
    if not isinstance(parts, list) or not parts:
        raise _bad(f"{where}.message_parts must be a non-empty list")
    for index, part in enumerate(parts):
        text = part.get("text") if isinstance(part, dict) else None
        content = text.get("content") if isinstance(text, dict) else None
        if not isinstance(content, str) or not content.strip():
            raise _bad(f"{where}.message_parts[{index}].text.content must be a non-empty string")
    if message.get("message_type", "normal") not in ("normal", "private"):
        raise _bad(f"{where}.message_type must be normal or private")
    actor_type, actor_id = message.get("actor_type"), message.get("actor_id")
    if actor_type not in ("user", "agent"):
        raise _bad(f"{where}.actor_type must be user or agent")
    if not isinstance(actor_id, str) or actor_id not in (user_ids if actor_type == "user" else agents):
        raise _bad(f"{where}.actor_id must be the id of one of the conversation's users or of an agent")
