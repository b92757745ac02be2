-- Triage the open queue: count open conversations per inbox, flag the unassigned ones,
-- and list the oldest few with the agent they are assigned to.
-- Run: luabridge run --demo examples/triage_open_conversations.lua

local freshchat = app.integrations.freshchat
local MAX_PAGES = 20 -- a guard: never follow more pages than this

-- Every open conversation, page by page, until there is no next page.
local open = {}
for page = 1, MAX_PAGES do
  local result = freshchat.list_conversations({status = "open", page = page, per_page = 100})
  for _, conv in ipairs(result.conversations or {}) do
    open[#open + 1] = conv
  end
  if not (result.links and result.links.next_page) then break end
end

-- Agent names, to show who owns each conversation.
local agent_names = {}
for _, agent in ipairs(freshchat.list_agents({per_page = 100}).agents or {}) do
  agent_names[agent.id] = agent.last_name and (agent.first_name .. " " .. agent.last_name) or agent.first_name
end

-- Counts per inbox: a conversation's inbox_id (Freshchat's channel_id, which it also carries). "open" stands
-- for Freshchat's statuses new, assigned and reopened; assigned_agent_id is absent while unassigned.
local per_inbox, inboxes, unassigned = {}, {}, 0
for _, conv in ipairs(open) do
  local inbox = conv.inbox_id or "(no inbox)"
  if not per_inbox[inbox] then
    per_inbox[inbox] = 0
    inboxes[#inboxes + 1] = inbox
  end
  per_inbox[inbox] = per_inbox[inbox] + 1
  if not conv.assigned_agent_id then unassigned = unassigned + 1 end
end
table.sort(inboxes, function(a, b)
  if per_inbox[a] ~= per_inbox[b] then return per_inbox[a] > per_inbox[b] end
  return a < b
end)

print(string.format("%d open conversations in %d inboxes, %d unassigned", #open, #inboxes, unassigned))
for _, inbox in ipairs(inboxes) do
  print(string.format("  %-38s %3d", inbox, per_inbox[inbox]))
end

-- The oldest first: ISO-8601 times sort as text.
table.sort(open, function(a, b) return a.created_time < b.created_time end)
print("Oldest open conversations:")
local oldest = {}
for i = 1, math.min(5, #open) do
  local conv = open[i]
  local owner = agent_names[conv.assigned_agent_id] or "unassigned"
  print(string.format("  %s  opened %s  inbox %s  (%s)", conv.id, conv.created_time, conv.inbox_id, owner))
  oldest[#oldest + 1] = conv.id
end

local by_inbox = {}
for _, inbox in ipairs(inboxes) do by_inbox[inbox] = per_inbox[inbox] end
return {open = #open, unassigned = unassigned, by_inbox = by_inbox, oldest = oldest}
