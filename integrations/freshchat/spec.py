"""The seven Freshchat functions as data: names, descriptions, read/write, JSON Schemas and examples.

Summaries, parameter descriptions and examples are the reference's (``reference.md``) word for word;
the longer descriptions and the read/write operations come from the integration's metadata. Validation,
the per-function doc pages and the dispatch to the client (each function is served by the client's
method of the same name) are all driven from this one table, and ``tests/freshchat/test_spec.py`` checks
it against the reference. What each function returns (``result``) is declared in ``results.py`` and
attached below.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from luabridge import Function

from .client import create_conversation_request
from .results import RESULTS

_DRAFT = "https://json-schema.org/draft/2020-12/schema"

# The reference states per_page's maximum of 100 only for list_conversations; the metadata states it for
# all three list functions, so all three enforce it (their descriptions stay the reference's words).
_PAGE = {"type": "integer", "description": "Page number (default: 1)", "default": 1, "minimum": 1}
_PER_PAGE = {"type": "integer", "description": "Results per page (default: 50)", "default": 50,
             "minimum": 1, "maximum": 100}


def _schema(properties: dict[str, dict[str, Any]], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object schema over ``properties`` that rejects unknown names."""
    return {"$schema": _DRAFT, "type": "object", "properties": properties, "required": list(required),
            "additionalProperties": False}


def _string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


_DECLARED: tuple[Function, ...] = (
    Function(
        name="list_conversations",
        summary="List support conversations with optional filters.",
        description="List support conversations from Freshchat. Returns paginated results with optional "
                    "filters for status and inbox. Use this to find recent or unresolved conversations.",
        operation="read",
        parameters=_schema({
            "page": _PAGE,
            "per_page": {**_PER_PAGE, "description": "Results per page (default: 50, max: 100)"},
            "status": {
                **_string('Filter by status: `"new"`, `"open"`, `"pending"`, `"resolved"`, `"closed"`'),
                "enum": ["new", "open", "pending", "resolved", "closed"],
            },
            "inbox_id": _string("Filter by inbox ID"),
        }),
        examples=(
            '-- List open conversations\n'
            'local result = app.integrations.freshchat.list_conversations({\n'
            '  status = "open",\n'
            '  per_page = 20\n'
            '})\n'
            '\n'
            'for _, conv in ipairs(result.conversations or {}) do\n'
            '  print(conv.id .. ": " .. (conv.status or "unknown"))\n'
            'end',
            '-- Paginate through resolved conversations\n'
            'local result = app.integrations.freshchat.list_conversations({\n'
            '  status = "resolved",\n'
            '  page = 1,\n'
            '  per_page = 50\n'
            '})',
        ),
    ),
    Function(
        name="get_conversation",
        summary="Get full details of a specific conversation.",
        description="Get full details of a specific Freshchat conversation by ID, including messages, "
                    "participants, and metadata.",
        operation="read",
        parameters=_schema({"id": _string("The conversation ID")}, required=("id",)),
        examples=(
            'local result = app.integrations.freshchat.get_conversation({\n'
            '  id = "abc-123-def"\n'
            '})\n'
            'print("Status: " .. result.status)\n'
            'print("Created: " .. result.created_time)',
        ),
    ),
    Function(
        name="create_conversation",
        summary="Start a new support conversation.",
        description="Create a new Freshchat conversation. Specify the user ID, an initial message, and "
                    "optionally a channel ID. The conversation will be started with the provided message.",
        operation="write",
        parameters=_schema({
            "user_id": _string("ID of the user to associate with the conversation"),
            "initial_message": _string("First message in the conversation"),
            "channel_id": _string("Optional channel ID for routing"),
        }, required=("user_id", "initial_message")),
        request=create_conversation_request,
        examples=(
            'local result = app.integrations.freshchat.create_conversation({\n'
            '  user_id = "user-456",\n'
            '  initial_message = "I need help with my subscription",\n'
            '  channel_id = "channel-789"\n'
            '})\n'
            'print("Created conversation: " .. result.conversation_id)',
        ),
    ),
    Function(
        name="list_agents",
        summary="List support agents with pagination.",
        description="List support agents in Freshchat. Returns paginated results with agent details such "
                    "as name, email, and availability status.",
        operation="read",
        parameters=_schema({"page": _PAGE, "per_page": _PER_PAGE}),
        examples=(
            'local result = app.integrations.freshchat.list_agents({\n'
            '  page = 1,\n'
            '  per_page = 25\n'
            '})\n'
            '\n'
            'for _, agent in ipairs(result.agents or {}) do\n'
            '  print(agent.first_name .. " (" .. agent.email .. ") - " .. (agent.status or "offline"))\n'
            'end',
        ),
    ),
    Function(
        name="get_agent",
        summary="Get details of a specific agent.",
        description="Get details of a specific Freshchat agent by ID, including name, email, "
                    "availability, and assigned conversations.",
        operation="read",
        parameters=_schema({"id": _string("The agent ID")}, required=("id",)),
        examples=(
            'local result = app.integrations.freshchat.get_agent({\n'
            '  id = "agent-123"\n'
            '})\n'
            'print("Agent: " .. result.first_name .. " " .. (result.last_name or ""))\n'
            'print("Email: " .. result.email)',
        ),
    ),
    Function(
        name="list_groups",
        summary="List support groups (teams).",
        description="List support groups (teams) in Freshchat. Groups organize agents into teams for "
                    "routing conversations.",
        operation="read",
        parameters=_schema({"page": _PAGE, "per_page": _PER_PAGE}),
        examples=(
            'local result = app.integrations.freshchat.list_groups({\n'
            '  page = 1,\n'
            '  per_page = 50\n'
            '})\n'
            '\n'
            'for _, group in ipairs(result.groups or {}) do\n'
            '  print(group.id .. ": " .. group.name)\n'
            'end',
        ),
    ),
    Function(
        name="get_current_user",
        summary="Get the currently authenticated user profile.",
        description="Get the profile of the currently authenticated Freshchat user. Useful for verifying "
                    "credentials and identifying the connected account.",
        operation="read",
        parameters=_schema({}),
        examples=(
            'local result = app.integrations.freshchat.get_current_user({})\n'
            'print("Logged in as: " .. (result.first_name or "") .. " " .. (result.last_name or ""))\n'
            'print("Email: " .. (result.email or "unknown"))',
        ),
    ),
)

FUNCTIONS: tuple[Function, ...] = tuple(replace(fn, result=RESULTS[fn.name]) for fn in _DECLARED)
