-- Find an agent by email address and list the groups (teams) they belong to.
-- Pages through the agents a few at a time, then maps group ids to names with list_groups.
-- Run: luabridge run --demo examples/find_agent_groups.lua

local freshchat = app.integrations.freshchat
local EMAIL = "Kenji.Kowalski@acme.example" -- matched without regard to case
local MAX_PAGES = 50 -- a guard: never follow more pages than this

local function find_agent(email)
  local wanted = email:lower()
  for page = 1, MAX_PAGES do
    local result = freshchat.list_agents({page = page, per_page = 10})
    for _, agent in ipairs(result.agents or {}) do
      if (agent.email or ""):lower() == wanted then
        return agent, page
      end
    end
    if not (result.links and result.links.next_page) then return nil, page end
  end
  error("more than " .. MAX_PAGES .. " pages of agents; giving up")
end

local agent, pages = find_agent(EMAIL)
if not agent then
  print("No agent has the email " .. EMAIL .. " (searched " .. pages .. " pages)")
  return {found = false}
end

-- Group ids -> names.
local group_names = {}
for page = 1, MAX_PAGES do
  local result = freshchat.list_groups({page = page, per_page = 50})
  for _, group in ipairs(result.groups or {}) do
    group_names[group.id] = group.name
  end
  if not (result.links and result.links.next_page) then break end
end

local groups = {}
for _, id in ipairs(agent.groups or {}) do
  groups[#groups + 1] = group_names[id] or ("unknown group " .. id)
end

print(string.format("%s %s <%s> (found on page %d)", agent.first_name, agent.last_name or "", agent.email, pages))
print("  id:     " .. agent.id)
print("  role:   " .. (agent.role_id or "?"))
print("  status: " .. (agent.status or "offline") .. " (" .. ((agent.agent_status and agent.agent_status.name) or "?") .. ")")
print("  groups: " .. (#groups > 0 and table.concat(groups, ", ") or "(none)"))

return {found = true, id = agent.id, name = agent.first_name .. " " .. (agent.last_name or ""), groups = groups}
