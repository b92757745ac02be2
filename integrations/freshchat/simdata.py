"""Build the seeded, deterministic data the Freshchat simulator serves.

:func:`build_dataset` draws every value from one ``random.Random(seed)`` and a fixed clock, so the same seed
always gives the same data. The objects have the shapes of Freshchat REST API v2 (see
Freshchat's public API reference): ids are UUID-like, times are ISO-8601 UTC with milliseconds.

Fields Freshchat leaves out when they have no value are left out here too: an unassigned conversation has no
``assigned_agent_id``, an agent may have no ``last_name`` or ``phone``. Conversation statuses are Freshchat's
own (:data:`STATUS_COUNTS`), not the reference's filter words.

Whatever the seed, the ids used by the reference's examples exist (:data:`REFERENCE_IDS`): conversation
``abc-123-def`` (assigned to agent ``agent-123``), agent ``agent-123``, user ``user-456`` and channel ``channel-789``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

REFERENCE_IDS = {
    "conversation": "abc-123-def",
    "agent": "agent-123",
    "user": "user-456",
    "channel": "channel-789",
}

# How many conversations of each of Freshchat's statuses; fixed counts so each is always well represented.
STATUS_COUNTS = {"new": 30, "assigned": 65, "reopened": 15, "waiting on customer": 25,
                 "waiting on internal team": 10, "resolved": 95}
AGENT_COUNT = 36
USER_COUNT = 60

TOKEN_ISSUED_AT = 1735689600  # 2025-01-01T00:00:00Z; Freshchat tokens live about ten years
# The simulated "now": data is dated in the six months before it, so runs never depend on the real clock.
CLOCK = datetime(2025, 7, 1, 9, 0, 0, tzinfo=timezone.utc)

FIRST_NAMES = (
    "Ava", "Liam", "Maya", "Noah", "Priya", "Ethan", "Sofia", "Lucas", "Amara", "Mateo", "Hana", "Oliver",
    "Zara", "Kenji", "Chloe", "Ravi", "Elena", "Tomas", "Ines", "Jonah", "Leila", "Marco", "Nadia", "Owen",
    "Freya", "Diego", "Aisha", "Felix", "Yuki", "Samir",
)
LAST_NAMES = (
    "Patel", "Nguyen", "Garcia", "Smith", "Kowalski", "Okafor", "Rossi", "Müller", "Tanaka", "Silva",
    "Johansson", "Haddad", "Brown", "Dubois", "Kim", "Novak", "Moreau", "Costa", "Walsh", "Ibrahim",
)
GROUPS = (
    ("Tier 1 Support", "First response for every incoming conversation", "INTELLIASSIGN"),
    ("Billing", "Invoices, refunds and subscription changes", "ROUND_ROBIN"),
    ("Escalations", "Hard cases handed over by Tier 1", "DISABLED"),
    ("Sales", "Pre-sales questions and demos", "ROUND_ROBIN"),
    ("Onboarding", "Helps new customers through setup", "INTELLIASSIGN"),
)
CHANNELS = ("Billing", "Technical Support", "Sales", "Onboarding", "Returns", "General")
AGENT_STATUSES = ("Available", "Tea break", "In a meeting", "Training", "Away")
ROLES = ("ACCOUNT_ADMIN", "ADMIN", "AGENT", "AGENT", "AGENT")
PRIORITIES = ("Low", "Medium", "Medium", "High", "Urgent")
USER_MESSAGES = (
    "I need help with my subscription",
    "My invoice shows the wrong amount.",
    "How do I reset my password?",
    "The app crashes when I upload a file.",
    "Can I change the email address on my account?",
    "I was charged twice this month.",
    "Do you offer a discount for non-profits?",
    "The export to CSV never finishes.",
    "How do I add a teammate to my workspace?",
    "My order has not arrived yet.",
)
AGENT_MESSAGES = (
    "Thanks for reaching out! Let me look into that for you.",
    "Could you share a screenshot of what you see?",
    "I have refunded the duplicate charge; it should appear in 3-5 days.",
    "That is fixed now. Could you try again?",
    "I have passed this on to our engineering team.",
    "You can change it under Settings > Account.",
)
FOLLOW_UPS = ("Thanks, that worked!", "Still not working, sorry.", "Great, thank you.", "Any update on this?")


@dataclass
class Dataset:
    """Everything one simulated Freshchat account holds; lists are in the order the API returns them."""

    seed: int
    account: dict[str, Any]
    groups: list[dict[str, Any]]
    agents: list[dict[str, Any]]
    users: list[dict[str, Any]]
    channels: list[dict[str, Any]]
    conversations: list[dict[str, Any]]  # newest first
    messages: dict[str, list[dict[str, Any]]]  # conversation_id -> messages, oldest first
    current_agent_id: str  # the agent the token names in its ``sub`` claim
    token: str


def timestamp(moment: datetime) -> str:
    """Format ``moment`` the way Freshchat does: ISO-8601 UTC with milliseconds and ``Z``."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _Draw:
    """Seeded draws of ids, times and choices."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def past(self, max_days: float = 180) -> datetime:
        """A moment up to ``max_days`` before :data:`CLOCK`, to the millisecond."""
        return CLOCK - timedelta(milliseconds=self.rng.randrange(int(max_days * 86_400_000)))

    def later(self, moment: datetime, max_hours: float) -> datetime:
        """A moment up to ``max_hours`` after ``moment``, never after :data:`CLOCK`."""
        return min(CLOCK, moment + timedelta(milliseconds=self.rng.randrange(1, int(max_hours * 3_600_000))))

    def phone(self) -> str:
        return f"+1-555-{self.rng.randrange(100, 1000)}-{self.rng.randrange(1000, 10000)}"


def _account(draw: _Draw) -> dict[str, Any]:
    return {
        "account_id": draw.uuid(),
        "app_id": draw.uuid(),
        "organisation_id": draw.rng.randrange(10**14, 10**15),
        "account_domain": "acme-support.freshchat.com",
        "plan_type": "growth",
        "datacenter": "US",
    }


def _groups(draw: _Draw) -> list[dict[str, Any]]:
    return [
        {"id": draw.uuid(), "name": name, "description": description, "routing_type": routing}
        for name, description, routing in GROUPS
    ]


def _channels(draw: _Draw) -> list[dict[str, Any]]:
    channels = []
    for index, name in enumerate(CHANNELS):
        channels.append({
            "id": REFERENCE_IDS["channel"] if index == 0 else draw.uuid(),
            "name": name,
            "enabled": index != len(CHANNELS) - 1,
            "public": index < 4,
            "locale": "en",
            "tags": [name.lower().replace(" ", "-")],
            "icon": {"url": f"https://assets.freshchat.example/icons/{name.lower().replace(' ', '_')}.png"},
            "updated_time": timestamp(draw.past(365)),
        })
    return channels


def _person(draw: _Draw, index: int, used_emails: set[str], domain: str) -> dict[str, Any]:
    """Shared fields of an agent or a user, with an email unique within ``used_emails``."""
    first = draw.rng.choice(FIRST_NAMES)
    last = draw.rng.choice(LAST_NAMES)
    local = f"{first}.{last}".lower().replace("ü", "ue")
    email = f"{local}@{domain}"
    if email in used_emails:
        email = f"{local}{index}@{domain}"
    used_emails.add(email)
    return {"first_name": first, "last_name": last, "email": email}


def _agents(draw: _Draw, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    agents: list[dict[str, Any]] = []
    emails: set[str] = set()
    role_ids = [draw.uuid() for _ in range(2)]  # custom roles appear as UUIDs, built-in ones by name
    for index in range(AGENT_COUNT):
        person = _person(draw, index, emails, "acme.example")
        if index == 0:
            person = {"first_name": "Alex", "last_name": "Rivera", "email": "alex.rivera@acme.example"}
        elif index % 9 == 4:
            del person["last_name"]  # Freshchat allows agents without a last name
        agent_id = REFERENCE_IDS["agent"] if index == 0 else draw.uuid()
        status_name = draw.rng.choice(AGENT_STATUSES)
        deactivated = index % 12 == 11
        if deactivated:
            status_name = "Away"  # a deactivated agent cannot log in
        phone = draw.phone() if draw.rng.random() < 0.7 else None
        agent = {
            "id": agent_id,
            **person,
            "avatar": {"url": f"https://assets.freshchat.example/avatars/{agent_id}.png"},
            "groups": [g["id"] for g in draw.rng.sample(groups, draw.rng.randint(1, 2))],
            "role_id": "ACCOUNT_ADMIN" if index == 0 else draw.rng.choice((*ROLES, *role_ids)),
            "availability_status": "AVAILABLE" if status_name == "Available" else "UNAVAILABLE",
            "agent_status": {"id": draw.uuid(), "name": status_name},
            "login_status": status_name != "Away",
            "is_deactivated": deactivated,
            "created_time": timestamp(draw.past(900)),
        }
        if phone is not None:
            agent["phone"] = phone
        agents.append(agent)
    return agents


def _users(draw: _Draw) -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = []
    emails: set[str] = set()
    for index in range(USER_COUNT):
        created = draw.past(400)
        users.append({
            "id": REFERENCE_IDS["user"] if index == 0 else draw.uuid(),
            **_person(draw, index, emails, "customer.example"),
            "phone": draw.phone() if draw.rng.random() < 0.5 else None,
            "avatar": {"url": None},
            "reference_id": f"cust-{10000 + index}",
            "properties": [{"name": "plan", "value": draw.rng.choice(("free", "pro", "enterprise"))}],
            "created_time": timestamp(created),
            "updated_time": timestamp(draw.later(created, 24 * 30)),
        })
    return users


def _message(draw: _Draw, conv: dict[str, Any], actor_type: str, actor_id: str, text: str,
             when: datetime) -> dict[str, Any]:
    return {
        "id": draw.uuid(),
        "conversation_id": conv["conversation_id"],
        "channel_id": conv["channel_id"],
        "app_id": conv["app_id"],
        "message_parts": [{"text": {"content": text}}],
        "message_type": "normal",
        "actor_type": actor_type,
        "actor_id": actor_id,
        "created_time": timestamp(when),
    }


def _thread(draw: _Draw, conv: dict[str, Any], created: datetime) -> list[dict[str, Any]]:
    """The messages of one conversation: the user's opener, then alternating replies."""
    agent_id = conv.get("assigned_agent_id")
    when = created
    thread = [_message(draw, conv, "user", conv["user_id"], draw.rng.choice(USER_MESSAGES), when)]
    replies = 0 if agent_id is None else draw.rng.randint(1, 5)
    for turn in range(replies):
        when = draw.later(when, 2)
        if turn % 2 == 0:
            thread.append(_message(draw, conv, "agent", agent_id, draw.rng.choice(AGENT_MESSAGES), when))
        else:
            thread.append(_message(draw, conv, "user", conv["user_id"], draw.rng.choice(FOLLOW_UPS), when))
    return thread


def _conversations(draw: _Draw, account: dict[str, Any], agents: list[dict[str, Any]],
                   groups: list[dict[str, Any]], users: list[dict[str, Any]],
                   channels: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, list]]:
    statuses = [status for status, count in STATUS_COUNTS.items() for _ in range(count)]
    draw.rng.shuffle(statuses)
    first = statuses.index("assigned")  # the reference conversation is assigned; counts stay exact
    statuses[0], statuses[first] = statuses[first], statuses[0]
    active_agents = [a for a in agents if not a["is_deactivated"]]
    internal_id = draw.rng.randrange(10**11, 10**12)
    rows: list[tuple[datetime, dict[str, Any]]] = []
    messages: dict[str, list[dict[str, Any]]] = {}
    for index, status in enumerate(statuses):
        reference = index == 0
        internal_id += draw.rng.randint(1, 400)
        created = CLOCK - timedelta(hours=3, minutes=25, seconds=12.345) if reference else draw.past()
        unassigned = status == "new" or (status != "assigned" and draw.rng.random() < 0.12)
        agent = agents[0] if reference else draw.rng.choice(active_agents)
        group_id = None if draw.rng.random() < 0.25 else draw.rng.choice(groups)["id"]
        conv = {
            "conversation_id": REFERENCE_IDS["conversation"] if reference else draw.uuid(),
            "conversation_internal_id": internal_id,
            "app_id": account["app_id"],
            "status": status,
            "channel_id": channels[0]["id"] if reference else draw.rng.choice(channels)["id"],
            "user_id": users[0]["id"] if reference else draw.rng.choice(users)["id"],
            "properties": {"priority": draw.rng.choice(PRIORITIES)},
            "created_time": timestamp(created),
            "updated_time": timestamp(created),
            "url": conversation_url(account, internal_id),
        }
        if not unassigned:
            conv["assigned_agent_id"] = agent["id"]
        if group_id is not None:
            conv["assigned_group_id"] = group_id
        thread = _thread(draw, conv, created)
        conv["updated_time"] = thread[-1]["created_time"]
        messages[conv["conversation_id"]] = thread
        rows.append((created, conv))
    rows.sort(key=lambda row: row[0], reverse=True)
    return [conv for _, conv in rows], messages


def conversation_url(account: dict[str, Any], internal_id: int) -> str:
    """The web-app address of a conversation, as Freshchat reports it in ``url``."""
    return f"https://{account['account_domain']}/a/{account['organisation_id']}/open/conversation/{internal_id}"


def make_token(seed: int, sub: str) -> str:
    """Return a JWT-shaped token (``header.payload.signature``, base64url) whose ``sub`` claim is ``sub``.

    It is signed with HMAC-SHA256 under a key derived from ``seed``, so it looks and parses like a
    Freshchat API token without being one.
    """

    def encode(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    def part(claims: dict[str, Any]) -> str:
        return encode(json.dumps(claims, separators=(",", ":")).encode())

    header = part({"alg": "HS256", "typ": "JWT"})
    payload = part({"sub": sub, "iss": "freshchat-simulator", "scope": "freshchat:api",
                    "iat": TOKEN_ISSUED_AT, "exp": TOKEN_ISSUED_AT + 10 * 365 * 86400})
    key = f"freshchat-simulator-{seed}".encode()
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{encode(signature)}"


def new_conversation(account: dict[str, Any], rng: random.Random, internal_id: int, channel_id: str,
                     user_ids: list[str], messages: list[dict[str, Any]],
                     when: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Build a conversation just created from validated request ``messages``, and its stored messages."""

    def new_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    now = timestamp(when)
    conv = {
        "conversation_id": new_id(),
        "conversation_internal_id": internal_id,
        "app_id": account["app_id"],
        "status": "new",
        "channel_id": channel_id,
        "user_id": user_ids[0],
        "properties": {"priority": "Low"},
        "created_time": now,
        "updated_time": now,
        "url": conversation_url(account, internal_id),
    }
    thread = [
        {"id": new_id(), "conversation_id": conv["conversation_id"], "channel_id": channel_id,
         "app_id": account["app_id"], "message_parts": message["message_parts"],
         "message_type": message.get("message_type", "normal"), "actor_type": message["actor_type"],
         "actor_id": message["actor_id"], "created_time": now}
        for message in messages
    ]
    return conv, thread


def build_dataset(seed: int = 0) -> Dataset:
    """Build the data of one simulated account; the same ``seed`` always gives identical data."""
    draw = _Draw(seed)
    account = _account(draw)
    groups = _groups(draw)
    channels = _channels(draw)
    agents = _agents(draw, groups)
    users = _users(draw)
    conversations, messages = _conversations(draw, account, agents, groups, users, channels)
    return Dataset(
        seed=seed,
        account=account,
        groups=groups,
        agents=agents,
        users=users,
        channels=channels,
        conversations=conversations,
        messages=messages,
        current_agent_id=REFERENCE_IDS["agent"],
        token=make_token(seed, REFERENCE_IDS["agent"]),
    )
