-- Lists are paginated like Freshchat: `pagination` counts, `links` to the first, previous, next and last
-- pages, filters repeated in every link, and pages that together hold every item exactly once.
local fc = app.integrations.freshchat

local first = fc.list_agents({page = 1, per_page = 10})
local p = first.pagination
assert(p.current_page == 1 and p.items_per_page == 10, json.encode(p))
assert(p.total_items == 36 and p.total_pages == 4, json.encode(p))
assert(#first.agents == 10)

local links = first.links
assert(links.first_page.href == "/v2/agents?items_per_page=10&page=1", json.encode(links))
assert(links.next_page.href == "/v2/agents?items_per_page=10&page=2", json.encode(links))
assert(links.last_page.href == "/v2/agents?items_per_page=10&page=4", json.encode(links))
assert(links.previous_page == nil, "no previous page on page 1")
for _, rel in ipairs({"first_page", "next_page", "last_page"}) do
  assert(links[rel].rel == rel and links[rel].type == "GET", json.encode(links[rel]))
end

-- The last page: a previous link, no next link, the remainder of the items.
local last = fc.list_agents({page = 4, per_page = 10})
assert(#last.agents == 6 and last.pagination.current_page == 4)
assert(last.links.next_page == nil, "no next page on the last page")
assert(last.links.previous_page.href == "/v2/agents?items_per_page=10&page=3", json.encode(last.links))

-- Past the end: an empty page, still an array.
local beyond = fc.list_agents({page = 5, per_page = 10})
assert(#beyond.agents == 0 and json.encode(beyond.agents) == "[]" and beyond.links.next_page == nil)

-- Following next_page until it is gone visits every item once; the page number comes from the link.
local seen, count, page, guard = {}, 0, 1, 0
while page do
  guard = guard + 1
  assert(guard <= 10, "pagination did not end")
  local result = fc.list_agents({page = page, per_page = 7})
  for _, agent in ipairs(result.agents) do
    assert(not seen[agent.id], "agent " .. agent.id .. " on two pages")
    seen[agent.id] = true
    count = count + 1
  end
  local next_page = result.links.next_page
  page = next_page and tonumber(next_page.href:match("[?&]page=(%d+)"))
end
assert(count == 36 and guard == 6, count .. " agents in " .. guard .. " pages")

-- Filters are part of every link, in alphabetical order as Freshchat writes them; the filter word "open"
-- is sent as Freshchat's statuses new, assigned and reopened.
local open = fc.list_conversations({status = "open", inbox_id = "channel-789", per_page = 5})
assert(open.links.next_page.href
  == "/v2/conversations?inbox_id=channel-789&items_per_page=5&page=2&status=new%2Cassigned%2Creopened",
  open.links.next_page.href)
local is_open = {new = true, assigned = true, reopened = true}
for _, conv in ipairs(open.conversations) do
  assert(is_open[conv.status] and conv.inbox_id == "channel-789", json.encode(conv))
end

-- Groups: one page holds them all.
local groups = fc.list_groups()
assert(groups.pagination.total_items == #groups.groups and groups.links.next_page == nil)

return {agents = count, pages = guard}
