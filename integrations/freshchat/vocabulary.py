"""The reference's words on Freshchat's data: status filters, an agent's ``status``, a conversation's inbox.

The reference (the seed) filters conversations by ``"new"``, ``"open"``, ``"pending"``, ``"resolved"`` and
``"closed"``, calls a channel an inbox, and its examples read ``agent.status``. Freshchat speaks otherwise:
its conversation statuses are :data:`FRESHCHAT_STATUSES`, a conversation names its inbox ``channel_id``, and
an agent's availability is ``availability_status``, ``login_status`` and ``agent_status``. The client
translates a filter word into Freshchat's statuses and adds the reference's fields *beside* Freshchat's own,
which it never changes, as it already does for ``id`` beside ``conversation_id``.
"""

from __future__ import annotations

from typing import Any

# Freshchat's own values (Freshworks' client library types the field with these; newer accounts add the
# two "waiting" ones). Freshchat's rule engine compares them upper-cased: compare case-insensitively.
FRESHCHAT_STATUSES = ("new", "assigned", "reopened", "waiting on customer", "waiting on internal team",
                      "resolved")

# Each filter word of the reference and the Freshchat statuses it selects. "open" is every conversation
# not yet resolved and not waiting (Freshchat's web app shows new, assigned and reopened ones as Open);
# "pending" is the waiting ones; Freshchat has no separate closed state, so "closed" is "resolved".
STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "new": ("new",),
    "open": ("new", "assigned", "reopened"),
    "pending": ("waiting on customer", "waiting on internal team"),
    "resolved": ("resolved",),
    "closed": ("resolved",),
}

# An agent's ``status`` as the reference's example ``(agent.status or "offline")`` reads it.
AGENT_STATUSES = ("available", "unavailable", "offline")


def status_query(word: str) -> str:
    """The ``status`` query parameter for a filter word: its Freshchat statuses, comma-separated."""
    return ",".join(STATUS_FILTERS[word])


def agent_status(agent: dict[str, Any]) -> str | None:
    """``"offline"`` when the agent is logged out, else ``"available"`` or ``"unavailable"`` by its
    ``availability_status``; ``None`` when Freshchat sent neither field."""
    if agent.get("login_status") is False:
        return "offline"
    availability = agent.get("availability_status")
    if not isinstance(availability, str):
        return None
    return "available" if availability.upper() == "AVAILABLE" else "unavailable"


def with_agent_fields(agent: Any) -> Any:
    """Add ``status`` (:func:`agent_status`) to an agent object, unless Freshchat sent one itself."""
    if isinstance(agent, dict) and "status" not in agent:
        status = agent_status(agent)
        if status is not None:
            agent["status"] = status
    return agent


def with_conversation_fields(conversation: Any) -> Any:
    """Give a conversation both ``id`` and ``conversation_id`` (copying whichever it has) and an
    ``inbox_id`` equal to its ``channel_id``."""
    if isinstance(conversation, dict):
        if "conversation_id" in conversation:
            conversation.setdefault("id", conversation["conversation_id"])
        elif "id" in conversation:
            conversation["conversation_id"] = conversation["id"]
        if "channel_id" in conversation:
            conversation.setdefault("inbox_id", conversation["channel_id"])
    return conversation
