-- Open a conversation for a customer, then read it back to confirm what Freshchat stored.
-- A write: hosts that run scripts read-only (luabridge run --read-only) refuse it before anything is sent.
-- Run: luabridge run --demo examples/create_and_read_back.lua

local freshchat = app.integrations.freshchat

local created = freshchat.create_conversation({
  user_id = "user-456",
  initial_message = "Hi! My invoice for June shows the wrong amount.",
  channel_id = "channel-789",
})
print("Created conversation: " .. created.conversation_id)

-- Create results carry `conversation_id`; every conversation also has `id`, the same value.
local conv = freshchat.get_conversation(created.conversation_id)
print("Read back:            " .. conv.id)
print("Status:               " .. (conv.status or "unknown"))
print("Inbox (channel):      " .. (conv.channel_id or "?"))
print("Created at:           " .. (conv.created_time or "?"))

assert(conv.id == created.conversation_id, "read back a different conversation")
return {id = conv.id, status = conv.status, channel_id = conv.channel_id}
