"""Support tasks as an agent first writes them from the function pages, checked against the simulator's data.

Each task is a question, the Lua script an agent would write for it after reading
``lua_read_doc("integrations.freshchat.<fn>")`` (field names, the filter words, ``pagination.total_items``
as the count, ``status`` on agents, ``inbox_id`` on conversations, ``messages`` oldest first), and the
answer computed in Python from the simulator's own dataset, never written down by hand. A task passes only
when the script's answer is right, not merely when it runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from demo import demo_bridge

from integrations.freshchat.simdata import REFERENCE_IDS, Dataset
from integrations.freshchat.simulator import Simulator
from integrations.freshchat.vocabulary import STATUS_FILTERS
from luabridge import Bridge

FC = "local fc = app.integrations.freshchat\n"
# How an agent pages through a list after reading the Result section: follow links.next_page.
ALL_CONVERSATIONS = FC + """
local function all_conversations(filters)
  local items, page = {}, 1
  while true do
    local args = {page = page, per_page = 100}
    for k, v in pairs(filters or {}) do args[k] = v end
    local result = fc.list_conversations(args)
    for _, conv in ipairs(result.conversations) do items[#items + 1] = conv end
    if not result.links.next_page then break end
    page = page + 1
  end
  return items
end
"""


@dataclass(frozen=True)
class Task:
    """A question, the script an agent writes for it, and the right answer computed from the data."""

    question: str
    script: str
    answer: Callable[[Dataset], Any]
    writes: bool = False  # run against a simulator of its own, so the shared one's data stays as seeded


def with_status(data: Dataset, word: str) -> list[dict[str, Any]]:
    return [c for c in data.conversations if c["status"] in STATUS_FILTERS[word]]


def agent_name(agent: dict[str, Any]) -> str:
    return f"{agent['first_name']} {agent.get('last_name', '')}".rstrip()


def group_id(data: Dataset, name: str) -> str:
    return next(g["id"] for g in data.groups if g["name"] == name)


def agent_count(question: str, condition: str, expected: Callable[[Dataset], int]) -> Task:
    """A task that counts the agents of one page for which the Lua ``condition`` on ``agent`` holds."""
    return Task(question, FC + f"""
local n = 0
for _, agent in ipairs(fc.list_agents({{per_page = 100}}).agents) do
  if {condition} then n = n + 1 end
end
return n""", expected)


def status_count(word: str) -> Task:
    return Task(f"how many {word} conversations are there",
                FC + f'return fc.list_conversations({{status = "{word}"}}).pagination.total_items',
                lambda data: len(with_status(data, word)))


TASKS = [
    agent_count("how many agents are available", 'agent.status == "available"',
                lambda data: sum(a["availability_status"] == "AVAILABLE" and a["login_status"] for a in data.agents)),
    Task("the reference's agent listing: how many read as offline",
         FC + """
local offline = 0
for _, agent in ipairs(fc.list_agents({page = 1, per_page = 100}).agents or {}) do
  local line = agent.first_name .. " (" .. agent.email .. ") - " .. (agent.status or "offline")
  print(line)
  if line:sub(-#" - offline") == " - offline" then offline = offline + 1 end
end
return offline""",
         lambda data: sum(not a["login_status"] for a in data.agents)),
    agent_count("how many agents are logged in", 'agent.login_status',
                lambda data: sum(a["login_status"] for a in data.agents)),
    Task("how many agents are there",
         FC + "return fc.list_agents({per_page = 10}).pagination.total_items",
         lambda data: len(data.agents)),
    agent_count("how many agents have no last name", 'not agent.last_name',
                lambda data: sum("last_name" not in a for a in data.agents)),
    agent_count("how many agents are deactivated", 'agent.is_deactivated',
                lambda data: sum(a["is_deactivated"] for a in data.agents)),
    *(status_count(word) for word in ("new", "open", "pending", "resolved", "closed")),
    Task("how many conversations in all",
         FC + "return fc.list_conversations({per_page = 1}).pagination.total_items",
         lambda data: len(data.conversations)),
    Task("count conversations per inbox",
         ALL_CONVERSATIONS + """
local per_inbox = {}
for _, conv in ipairs(all_conversations()) do
  local inbox = conv.inbox_id or "unknown"
  per_inbox[inbox] = (per_inbox[inbox] or 0) + 1
end
return per_inbox""",
         lambda data: dict(Counter(c["channel_id"] for c in data.conversations))),
    Task("how many conversations are in inbox channel-789",
         FC + 'return fc.list_conversations({inbox_id = "channel-789"}).pagination.total_items',
         lambda data: sum(c["channel_id"] == "channel-789" for c in data.conversations)),
    Task("how many open conversations are in inbox channel-789",
         FC + 'return fc.list_conversations({status = "open", inbox_id = "channel-789"}).pagination.total_items',
         lambda data: sum(c["channel_id"] == "channel-789" for c in with_status(data, "open"))),
    Task("how many open conversations nobody is assigned to",
         ALL_CONVERSATIONS + """
local n = 0
for _, conv in ipairs(all_conversations({status = "open"})) do
  if not conv.assigned_agent_id then n = n + 1 end
end
return n""",
         lambda data: sum("assigned_agent_id" not in c for c in with_status(data, "open"))),
    Task("how many urgent open conversations",
         ALL_CONVERSATIONS + """
local n = 0
for _, conv in ipairs(all_conversations({status = "open"})) do
  if conv.properties and conv.properties.priority == "Urgent" then n = n + 1 end
end
return n""",
         lambda data: sum(c["properties"]["priority"] == "Urgent" for c in with_status(data, "open"))),
    Task("the oldest open conversation",
         ALL_CONVERSATIONS + """
local oldest
for _, conv in ipairs(all_conversations({status = "open"})) do
  if not oldest or conv.created_time < oldest.created_time then oldest = conv end
end
return oldest.id""",
         lambda data: min(with_status(data, "open"), key=lambda c: c["created_time"])["conversation_id"]),
    Task("conversations per status",
         ALL_CONVERSATIONS + """
local per_status = {}
for _, conv in ipairs(all_conversations()) do
  per_status[conv.status] = (per_status[conv.status] or 0) + 1
end
return per_status""",
         lambda data: dict(Counter(c["status"] for c in data.conversations))),
    Task("how many conversations agent-123 is handling (get_agent has none: list and compare)",
         ALL_CONVERSATIONS + """
local n = 0
for _, conv in ipairs(all_conversations()) do
  if conv.assigned_agent_id == "agent-123" then n = n + 1 end
end
return n""",
         lambda data: sum(c.get("assigned_agent_id") == "agent-123" for c in data.conversations)),
    Task("names of agents in group Billing",
         FC + """
local billing
for _, group in ipairs(fc.list_groups().groups) do
  if group.name == "Billing" then billing = group.id end
end
local names = {}
for _, agent in ipairs(fc.list_agents({per_page = 100}).agents) do
  for _, id in ipairs(agent.groups) do
    if id == billing then names[#names + 1] = agent.first_name .. " " .. (agent.last_name or "") end
  end
end
table.sort(names)
return names""",
         lambda data: sorted(f"{a['first_name']} {a.get('last_name', '')}" for a in data.agents
                             if group_id(data, "Billing") in a["groups"])),
    Task("how many agents in each group",
         FC + """
local names = {}
for _, group in ipairs(fc.list_groups().groups) do names[group.id] = group.name end
local counts = {}
for _, agent in ipairs(fc.list_agents({per_page = 100}).agents) do
  for _, id in ipairs(agent.groups) do
    counts[names[id]] = (counts[names[id]] or 0) + 1
  end
end
return counts""",
         lambda data: {g["name"]: sum(g["id"] in a["groups"] for a in data.agents) for g in data.groups}),
    Task("which groups is agent-123 in",
         FC + """
local names = {}
for _, group in ipairs(fc.list_groups().groups) do names[group.id] = group.name end
local mine = {}
for _, id in ipairs(fc.get_agent("agent-123").groups) do mine[#mine + 1] = names[id] end
table.sort(mine)
return mine""",
         lambda data: sorted(g["name"] for g in data.groups
                             if g["id"] in next(a for a in data.agents if a["id"] == "agent-123")["groups"])),
    Task("how many groups are there",
         FC + "return #fc.list_groups().groups",
         lambda data: len(data.groups)),
    Task("latest message of conversation abc-123-def",
         FC + """
local conv = fc.get_conversation("abc-123-def")
local latest = conv.messages[#conv.messages]
return latest.message_parts[1].text.content""",
         lambda data: data.messages[REFERENCE_IDS["conversation"]][-1]["message_parts"][0]["text"]["content"]),
    Task("what the customer first wrote in conversation abc-123-def",
         FC + 'return fc.get_conversation("abc-123-def").messages[1].message_parts[1].text.content',
         lambda data: data.messages[REFERENCE_IDS["conversation"]][0]["message_parts"][0]["text"]["content"]),
    Task("how many messages conversation abc-123-def has",
         FC + 'return #fc.get_conversation("abc-123-def").messages',
         lambda data: len(data.messages[REFERENCE_IDS["conversation"]])),
    Task("how many replies did agents write in the latest conversation",
         FC + """
local latest = fc.list_conversations({per_page = 1}).conversations[1]
local n = 0
for _, message in ipairs(fc.get_conversation(latest.id).messages) do
  if message.actor_type == "agent" then n = n + 1 end
end
return n""",
         lambda data: sum(m["actor_type"] == "agent"
                          for m in data.messages[data.conversations[0]["conversation_id"]])),
    Task("who handles conversation abc-123-def",
         FC + """
local conv = fc.get_conversation("abc-123-def")
local agent = fc.get_agent(conv.assigned_agent_id)
return agent.first_name .. " " .. (agent.last_name or "")""",
         lambda data: agent_name(next(a for a in data.agents if a["id"] == "agent-123"))),
    Task("the status of conversation abc-123-def",
         FC + 'return fc.get_conversation("abc-123-def").status',
         lambda data: next(c["status"] for c in data.conversations
                           if c["conversation_id"] == REFERENCE_IDS["conversation"])),
    Task("who am I",
         FC + 'local me = fc.get_current_user()\nreturn me.first_name .. " <" .. me.email .. ">"',
         lambda data: next(f"{a['first_name']} <{a['email']}>" for a in data.agents
                           if a["id"] == data.current_agent_id)),
    Task("open a conversation and read back its latest message",
         FC + """
local created = fc.create_conversation({user_id = "user-456", initial_message = "Where is my parcel?"})
local conv = fc.get_conversation(created.id)
return {conv.messages[#conv.messages].message_parts[1].text.content, conv.status, conv.inbox_id}""",
         lambda data: ["Where is my parcel?", "new", data.channels[0]["id"]], writes=True),
]


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Simulator, Bridge]]:
    with Simulator(seed=0) as sim, demo_bridge(sim) as bridge:
        yield sim, bridge


def test_there_are_at_least_25_tasks_each_asked_once():
    assert len(TASKS) >= 25
    assert len({task.question for task in TASKS}) == len(TASKS)


@pytest.mark.parametrize("task", TASKS, ids=[task.question for task in TASKS])
def test_the_agents_first_script_gives_the_right_answer(shared, task: Task):
    if task.writes:
        with Simulator(seed=0) as sim, demo_bridge(sim) as bridge:
            result = bridge.run(task.script)
    else:
        sim, bridge = shared
        result = bridge.run(task.script)
    assert result.ok, result.report()
    assert result.value == task.answer(sim.dataset)
