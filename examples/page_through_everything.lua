-- Page through everything: every conversation, agent and group, following each list's
-- `links.next_page` until there is none, with a guard against a list that never ends.
-- Prints totals per conversation status (Freshchat's own statuses) and checks them against its `pagination`.
-- Run: luabridge run --demo examples/page_through_everything.lua

local freshchat = app.integrations.freshchat
local MAX_PAGES = 25 -- a guard: at 100 items a page, 2,500 items per list at most

-- Calls list_fn page after page; returns every item under `key`, the pages read and the reported total.
local function fetch_all(list_fn, key, args)
  local items, page, total = {}, 1, nil
  while true do
    local query = {page = page, per_page = 100}
    for name, value in pairs(args or {}) do query[name] = value end
    local result = list_fn(query)
    for _, item in ipairs(result[key] or {}) do
      items[#items + 1] = item
    end
    total = result.pagination and result.pagination.total_items or total
    if not (result.links and result.links.next_page) then break end
    if page >= MAX_PAGES then
      print(string.format("warning: stopped %s after %d pages", key, page))
      break
    end
    page = page + 1
  end
  return items, page, total
end

local function pages(n) return n == 1 and "1 page" or (n .. " pages") end

local conversations, conversation_pages, reported = fetch_all(freshchat.list_conversations, "conversations")
local agents, agent_pages = fetch_all(freshchat.list_agents, "agents")
local groups, group_pages = fetch_all(freshchat.list_groups, "groups")

print(string.format("conversations: %d in %s (Freshchat reports %d)", #conversations, pages(conversation_pages),
  reported or -1))
print(string.format("agents:        %d in %s", #agents, pages(agent_pages)))
print(string.format("groups:        %d in %s", #groups, pages(group_pages)))

local by_status, statuses = {}, {}
for _, conv in ipairs(conversations) do
  local status = conv.status or "unknown"
  if not by_status[status] then
    by_status[status] = 0
    statuses[#statuses + 1] = status
  end
  by_status[status] = by_status[status] + 1
end
table.sort(statuses)
for _, status in ipairs(statuses) do
  print(string.format("  %-24s %4d", status, by_status[status]))
end

-- A filter is repeated on every page: the open ones alone. The filter word "open" stands for Freshchat's
-- statuses new, assigned and reopened (lua_read_doc("integrations.freshchat.list_conversations")).
local open = fetch_all(freshchat.list_conversations, "conversations", {status = "open"})
print(string.format("open (filtered on the server): %d", #open))
local open_statuses = (by_status.new or 0) + (by_status.assigned or 0) + (by_status.reopened or 0)
assert(#open == open_statuses, "the filtered list disagrees with the full one")

return {
  conversations = #conversations, agents = #agents, groups = #groups,
  by_status = by_status, complete = (reported == nil or reported == #conversations),
}
