-- Handle errors with pcall: show the exact message an agent gets, then recover.
-- A misspelled status is refused before anything is sent and the message suggests the fix;
-- an unknown id is answered by Freshchat with a 404. Neither ends the script.
-- Run: luabridge run --demo examples/handle_validation_error.lua

local freshchat = app.integrations.freshchat

-- 1. A validation error: nothing is sent, the message says what is valid.
local wanted = "opne"
local ok, result = pcall(freshchat.list_conversations, {status = wanted, per_page = 5})
if not ok then
  print("Validation error: " .. result)
  -- Recover: take the suggestion the message offers ('Did you mean "open"?') and try again. Only a
  -- validation error is worth it (nothing was sent), and a suggestion is never of the opposite meaning:
  -- "unresolved" gets none rather than "resolved", so retrying cannot turn the question around.
  local suggestion = result.type == "validation" and result:match('Did you mean "([%w_]+)"%?')
  if suggestion then
    print("Retrying with status = " .. suggestion)
    wanted = suggestion
    result = freshchat.list_conversations({status = wanted, per_page = 5})
  else
    error(result, 0) -- nothing to recover with: fail the run with the same message
  end
end
print(string.format("%d %s conversations in all; first page:", result.pagination.total_items, wanted))
for _, conv in ipairs(result.conversations) do
  print("  " .. conv.id .. "  " .. conv.status)
end

-- 2. An HTTP error: the agent does not exist. Fall back to the account's own user.
local agent_ok, agent = pcall(freshchat.get_agent, "agent-does-not-exist")
if not agent_ok then
  print("HTTP error: " .. agent)
  agent = freshchat.get_current_user()
  print("Falling back to the current user: " .. (agent.first_name or "?") .. " <" .. (agent.email or "?") .. ">")
end

return {status = wanted, total = result.pagination.total_items, fallback_agent = agent.id}
