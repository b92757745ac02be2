-- Every call form agents use reaches the same function with the same arguments.
local fc = app.integrations.freshchat
local same = function(a, b, what)
  assert(json.encode(a) == json.encode(b), what .. ": " .. json.encode(a) .. " ~= " .. json.encode(b))
end

-- Short and freshchat_-prefixed names.
local short = fc.get_agent({id = "agent-123"})
assert(short.id == "agent-123" and short.email == "alex.rivera@acme.example", json.encode(short))
same(short, fc.freshchat_get_agent({id = "agent-123"}), "prefixed name")
for _, name in ipairs({"list_conversations", "get_conversation", "create_conversation", "list_agents",
                       "get_agent", "list_groups", "get_current_user"}) do
  assert(type(fc[name]) == "function", name)
  assert(type(fc["freshchat_" .. name]) == "function", "freshchat_" .. name)
  assert(type(fc.default[name]) == "function", "default." .. name)
  assert(type(fc.work["freshchat_" .. name]) == "function", "work.freshchat_" .. name)
end

-- The default account, explicitly, and the named account 'work' (the same simulator here).
same(short, fc.default.get_agent({id = "agent-123"}), "default account")
same(short, fc.work.get_agent({id = "agent-123"}), "work account")
same(short, fc.work.freshchat_get_agent({id = "agent-123"}), "work account, prefixed name")
assert(rawequal(fc.default, app.integrations.freshchat.default), "namespaces are cached")

-- A single positional value is the first required parameter.
same(short, fc.get_agent("agent-123"), "positional id")
same(fc.get_conversation({id = "abc-123-def"}), fc.get_conversation("abc-123-def"), "positional conversation id")
same(fc.default.get_conversation("abc-123-def"), fc.work.freshchat_get_conversation("abc-123-def"),
  "positional id under both accounts")

-- f() equals f({}), and both send the documented defaults (page 1, 50 per page).
local bare, empty = fc.list_agents(), fc.list_agents({})
same(bare, empty, "f() and f({})")
assert(bare.pagination.current_page == 1 and bare.pagination.items_per_page == 50, json.encode(bare.pagination))
same(fc.list_groups(), fc.freshchat_list_groups({}), "list_groups() and freshchat_list_groups({})")
same(fc.get_current_user(), fc.get_current_user({}), "get_current_user() and get_current_user({})")
same(fc.list_conversations(), fc.list_conversations({page = 1, per_page = 50}), "defaults are page 1, 50 per page")

-- A whole number written as a float is accepted where an integer is expected.
same(fc.list_groups({per_page = 2.0}), fc.list_groups({per_page = 2}), "2.0 is 2")

-- A colon call by mistake says to use a dot.
local ok, err = pcall(function() return fc:list_agents({}) end)
assert(not ok)
err = err:gsub("^script:%d+: ", "")
assert(err == "freshchat.list_agents: called with ':' — use a dot: "
  .. "app.integrations.freshchat.list_agents({...}), not a colon", err)

return "ok"
