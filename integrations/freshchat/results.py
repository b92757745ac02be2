"""What each Freshchat function returns to Lua, as JSON Schemas: the ``result`` of its :class:`Function`.

The shapes are Freshchat's documented objects (agents, groups, conversations, messages, the account
configuration, list envelopes with ``pagination`` and ``links``) plus the fields the client adds in the
reference's words (``vocabulary.py``); each added field carries :data:`ADDED` with the reason. ``required``
names the fields that are always there; the others may be absent (Freshchat leaves out a field it has no
value for, such as ``assigned_agent_id`` on an unassigned conversation). A schema allows fields it does not
list, since Freshchat adds fields over time; ``tests/freshchat/test_results.py`` checks the simulator's
answers and the client's results against these shapes, both ways, so the pages cannot drift from the data.
"""

from __future__ import annotations

from typing import Any

from .vocabulary import AGENT_STATUSES, FRESHCHAT_STATUSES, STATUS_FILTERS

_DRAFT = "https://json-schema.org/draft/2020-12/schema"
ADDED = "x-added-by-client"  # on a field Freshchat does not send: why the client adds it


def _obj(description: str, properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "description": description, "properties": properties, "required": list(required)}


def _of(kind: str, description: str, **more: Any) -> dict[str, Any]:
    return {"type": kind, "description": description, **more}


def _list(description: str, items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "description": description, "items": items}


def _added(schema: dict[str, Any], why: str) -> dict[str, Any]:
    return {**schema, ADDED: why}


def _time(what: str) -> dict[str, Any]:
    return _of("string", f"When {what}: ISO-8601 UTC with milliseconds, e.g. `2025-07-03T21:31:59.088Z`.")


def _link(which: str) -> dict[str, Any]:
    return _obj(f"The {which} page as `{{href, rel, type}}`: `href` is a path with its query, such as "
                "`/v2/agents?items_per_page=10&page=2`.", {})


PAGINATION = _obj(
    "Where this page sits in the whole list.",
    {
        "total_items": _of("integer", "How many items match in all pages together: the count to report "
                                      "(`#result.<list>` is only this page's share)."),
        "total_pages": _of("integer", "How many pages there are at this `per_page`."),
        "current_page": _of("integer", "This page's number, from 1."),
        "items_per_page": _of("integer", "The page size used (`per_page`)."),
    },
    ("total_items", "total_pages", "current_page", "items_per_page"),
)
LINKS = _obj(
    "Links to other pages; `next_page` is absent on the last page, `previous_page` on the first.",
    {"first_page": _link("first"), "previous_page": _link("previous"), "next_page": _link("next"),
     "last_page": _link("last")},
    ("first_page", "last_page"),
)

_STATUS_MAPPING = "; ".join(
    f'`"{word}"`: {", ".join(f"`{status}`" for status in statuses)}' for word, statuses in STATUS_FILTERS.items()
)
CONVERSATION_FIELDS: dict[str, Any] = {
    "conversation_id": _of("string", "The conversation's id, Freshchat's name for it."),
    "id": _added(_of("string", "The same as `conversation_id`."),
                 "the reference's examples read `conv.id`; Freshchat sends only `conversation_id`"),
    "conversation_internal_id": _of("integer", "Freshchat's numeric id of the conversation, the one in `url`."),
    "app_id": _of("string", "The id of the Freshchat app (account) the conversation belongs to."),
    "status": _of("string", "Freshchat's status of the conversation, one of "
                            + ", ".join(f"`{status}`" for status in FRESHCHAT_STATUSES)
                            + " (compare case-insensitively; older accounts use only the first three and "
                            "`resolved`). It is not one of the filter words: list_conversations' `status` filter "
                            f"selects these statuses ({_STATUS_MAPPING}).",
                  enum=list(FRESHCHAT_STATUSES)),
    "channel_id": _of("string", "The id of the conversation's inbox (Freshchat's API calls inboxes channels "
                                "or topics); the value list_conversations' `inbox_id` filter takes."),
    "inbox_id": _added(_of("string", "The same as `channel_id`: the conversation's inbox."),
                       "the reference filters by `inbox_id`; Freshchat names the field `channel_id`"),
    "assigned_agent_id": _of("string", "The id of the agent handling it (an agent's `id`, see get_agent); "
                                       "absent while no agent is assigned."),
    "assigned_group_id": _of("string", "The id of the group it is routed to (a group's `id`, see "
                                       "list_groups); absent when none."),
    "user_id": _of("string", "The id of the customer (a Freshchat user, not an agent) the conversation is "
                             "with."),
    "properties": _obj("Custom properties: `priority` and the account's own `cf_*` fields.",
                       {"priority": _of("string", "The priority, such as `Low`, `Medium`, `High`, `Urgent`.")}),
    "created_time": _time("the conversation started"),
    "updated_time": _time("it last changed"),
    "url": _of("string", "The conversation's address in Freshchat's web app."),
}
CONVERSATION_REQUIRED = ("conversation_id", "id", "app_id", "status", "channel_id", "inbox_id", "user_id",
                         "created_time")

MESSAGE = _obj(
    "One message.",
    {
        "id": _of("string", "The message's id."),
        "conversation_id": _of("string", "The id of the conversation it belongs to."),
        "channel_id": _of("string", "The id of the conversation's inbox."),
        "app_id": _of("string", "The id of the Freshchat app."),
        "message_parts": _list(
            "The message's content, in parts; a text part's words are `message_parts[1].text.content`. "
            "Other kinds of parts (`image`, `file`, `url_button`, ...) carry other keys instead of `text`.",
            _obj("One part of the message.",
                 {"text": _obj("A text part.", {"content": _of("string", "The text.")}, ("content",))}),
        ),
        "message_type": _of("string", "`normal`, or `private` for a note only agents see.",
                            enum=["normal", "private"]),
        "actor_type": _of("string", "Who wrote it: `user` (the customer), `agent` or `system`.",
                          enum=["user", "agent", "system"]),
        "actor_id": _of("string", "The id of the user or agent who wrote it (see `actor_type`)."),
        "created_time": _time("it was sent"),
    },
    ("id", "message_parts", "actor_type", "created_time"),
)
MESSAGES = _added(
    _list("The conversation's messages, oldest first: the latest is `messages[#messages]`. At most the "
          "newest 1000 are read.", MESSAGE),
    "the reference promises messages; Freshchat serves them from GET /v2/conversations/{id}/messages",
)

AGENT_FIELDS: dict[str, Any] = {
    "id": _of("string", "The agent's id (a conversation's `assigned_agent_id` refers to it)."),
    "first_name": _of("string", "The agent's first name."),
    "last_name": _of("string", "The agent's last name; absent when the agent has none."),
    "email": _of("string", "The agent's email address."),
    "phone": _of("string", "The agent's phone number; absent when none is set."),
    "avatar": _obj("The agent's picture.", {"url": _of("string", "Where the picture is.")}),
    "groups": _list("The ids of the groups the agent belongs to (a group's `id`, see list_groups), not "
                    "their names.", _of("string", "A group id.")),
    "role_id": _of("string", "The agent's role: a built-in name such as `ACCOUNT_ADMIN`, `ADMIN`, `AGENT`, or "
                             "the id of a custom role."),
    "status": _added(
        _of("string", "The agent's availability in one word: `offline` when `login_status` is false, else "
                      "`available` when `availability_status` is `AVAILABLE`, else `unavailable`. Count "
                      'available agents with `agent.status == "available"`.', enum=list(AGENT_STATUSES)),
        "the reference's example reads `agent.status`; Freshchat has no such field",
    ),
    "availability_status": _of("string", "Freshchat's availability: `AVAILABLE` or `UNAVAILABLE` (whether "
                                         "conversations may be assigned to the agent).",
                               enum=["AVAILABLE", "UNAVAILABLE"]),
    "login_status": _of("boolean", "Whether the agent is logged in."),
    "agent_status": _obj("The presence the agent chose, with the account's own label.",
                         {"id": _of("string", "The presence's id."),
                          "name": _of("string", "Its label, such as `Available`, `Tea break`, `Away`.")}),
    "is_deactivated": _of("boolean", "Whether the agent's seat is deactivated."),
    "created_time": _time("the agent was added"),
}
AGENT_REQUIRED = ("id", "first_name", "email", "groups", "availability_status", "login_status", "status")

GROUP = _obj(
    "One group (team) of agents.",
    {
        "id": _of("string", "The group's id (an agent's `groups` and a conversation's `assigned_group_id` "
                            "hold it)."),
        "name": _of("string", "The group's name."),
        "description": _of("string", "What the group is for."),
        "routing_type": _of("string", "How conversations reach its agents, such as `INTELLIASSIGN`, "
                                      "`ROUND_ROBIN`, `DISABLED`."),
    },
    ("id", "name"),
)


def _page_of(name: str, what: str, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": _DRAFT,
        **_obj(f"One page of {what}; `pagination.total_items` is how many there are in all.",
               {name: _list(f"This page's {what}.", item), "pagination": PAGINATION, "links": LINKS},
               (name, "pagination", "links")),
    }


def _single(description: str, fields: dict[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    return {"$schema": _DRAFT, **_obj(description, fields, required)}


RESULTS: dict[str, dict[str, Any]] = {
    "list_conversations": _page_of(
        "conversations", "conversations",
        _obj("One conversation, without its messages (get_conversation reads them).", CONVERSATION_FIELDS,
             CONVERSATION_REQUIRED)),
    "get_conversation": _single(
        "The conversation with its messages. Its participants are given by id: `user_id` (the customer), "
        "`assigned_agent_id`, `assigned_group_id` and each message's `actor_id`; their profiles are not "
        "included.",
        {**CONVERSATION_FIELDS, "messages": MESSAGES}, (*CONVERSATION_REQUIRED, "messages")),
    "create_conversation": _single(
        "The conversation just created.",
        {**CONVERSATION_FIELDS,
         "users": _list("The conversation's users.", _obj("A user.", {"id": _of("string", "The user's id.")})),
         "messages": _list("The messages it was created with (the initial message).", MESSAGE)},
        ("conversation_id", "id")),
    "list_agents": _page_of("agents", "agents", _obj("One agent.", AGENT_FIELDS, AGENT_REQUIRED)),
    "get_agent": _single(
        "The agent. Assigned conversations are not included: Freshchat has no endpoint that lists an "
        "agent's conversations; list the conversations and compare their `assigned_agent_id` with the "
        "agent's `id` instead.", AGENT_FIELDS, AGENT_REQUIRED),
    "list_groups": _page_of("groups", "groups", GROUP),
    "get_current_user": _single(
        "Freshchat's account configuration (Freshchat has no \"who am I\" endpoint). When the token names an "
        "agent that exists, that agent's `id`, `first_name`, `last_name` and `email` are merged in; otherwise "
        "they are absent.",
        {
            "account_id": _of("string", "The account's id."),
            "app_id": _of("string", "The Freshchat app's id (conversations' `app_id`)."),
            "organisation_id": _of("integer", "The Freshworks organisation's id."),
            "account_domain": _of("string", "The account's Freshchat host name."),
            "plan_type": _of("string", "The account's plan, such as `growth`."),
            "datacenter": _of("string", "Where the account lives: `US`, `EUC`, `AUS`, `IND` or `US2`."),
            "id": _added(_of("string", "The token's agent's id."), "Freshchat's configuration names no agent"),
            "first_name": _added(_of("string", "The token's agent's first name."),
                                 "Freshchat's configuration names no agent"),
            "last_name": _added(_of("string", "The token's agent's last name."),
                                "Freshchat's configuration names no agent"),
            "email": _added(_of("string", "The token's agent's email."), "Freshchat's configuration names no agent"),
        },
        ("account_id", "app_id"),
    ),
}
