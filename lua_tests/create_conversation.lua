-- create_conversation: the result carries conversation_id (and id), and the conversation can be read back.
local fc = app.integrations.freshchat

local created = fc.create_conversation({
  user_id = "user-456",
  initial_message = "I need help with my subscription",
  channel_id = "channel-789",
})
assert(type(created.conversation_id) == "string" and #created.conversation_id > 0, json.encode(created))
assert(created.id == created.conversation_id)
assert(created.channel_id == "channel-789" and created.status == "new", json.encode(created))

local again = fc.get_conversation(created.conversation_id)
assert(again.id == created.conversation_id and again.conversation_id == created.conversation_id)
assert(again.channel_id == "channel-789" and again.user_id == "user-456", json.encode(again))

-- Without channel_id, under the prefixed name and the work account: still one new conversation.
local second = fc.work.freshchat_create_conversation({user_id = "user-456", initial_message = "Second question"})
assert(second.conversation_id ~= created.conversation_id)
assert(second.id == second.conversation_id)

-- Both show up in the list of new conversations; the first one in its inbox too.
local function ids(result)
  local set = {}
  for _, conv in ipairs(result.conversations) do set[conv.id] = true end
  return set
end
local new_ones = ids(fc.list_conversations({status = "new", per_page = 100}))
assert(new_ones[created.conversation_id] and new_ones[second.conversation_id])
assert(ids(fc.list_conversations({status = "new", inbox_id = "channel-789", per_page = 100}))[created.conversation_id])

return {created.conversation_id, second.conversation_id}
