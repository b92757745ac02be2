-- The docs a script reads at run time: lua_read_doc, lua_list_docs and lua_search_docs.
local FUNCTIONS = {"list_conversations", "get_conversation", "create_conversation", "list_agents", "get_agent",
                   "list_groups", "get_current_user"}

-- The reference, byte for byte (4204 bytes, the em dash is three of them).
local reference = lua_read_doc("integrations.freshchat")
local head = "# Freshchat — Lua API Reference\n\n## list_conversations\n"
assert(reference:sub(1, #head) == head, reference:sub(1, 60))
assert(#reference == 4204, #reference)
assert(reference:find("app.integrations.freshchat.function_name({...})", 1, true))
for _, name in ipairs(FUNCTIONS) do
  assert(reference:find("\n## " .. name .. "\n", 1, true), name)
end

-- One page per function, under every spelling.
for _, name in ipairs(FUNCTIONS) do
  local page = lua_read_doc("integrations.freshchat." .. name)
  assert(page:sub(1, #("# freshchat." .. name)) == "# freshchat." .. name, page:sub(1, 60))
  assert(lua_read_doc("integrations.freshchat.freshchat_" .. name) == page, "freshchat_" .. name)
  assert(lua_read_doc("app.integrations.freshchat." .. name) == page, "app." .. name)
end
assert(lua_read_doc("integrations.freshchat.get_agent"):find("| `id` | string | yes | The agent ID |", 1, true))
assert(lua_read_doc("integrations.freshchat.list_conversations"):find("`inbox_id`", 1, true))

-- A page per configured account.
for _, account in ipairs({"default", "work"}) do
  local page = lua_read_doc("integrations.freshchat." .. account)
  assert(page:find("app.integrations.freshchat." .. account, 1, true), account)
end

-- No page: the index, which names every page.
local index = lua_read_doc()
assert(index:sub(1, 16) == "# Documentation\n", index:sub(1, 40))

-- The list: sorted, every name readable and in the index, filtered by prefix.
local pages = lua_list_docs()
assert(#pages >= 3 + #FUNCTIONS + 2, #pages)
local listed = {}
for i, name in ipairs(pages) do
  assert(i == 1 or pages[i - 1] < name, "not sorted at " .. name)
  assert(#lua_read_doc(name) > 0, name)
  assert(index:find(name, 1, true), name .. " is not in the index")
  listed[name] = true
end
for _, name in ipairs({"overview", "errors", "integrations", "integrations.freshchat",
                       "integrations.freshchat.default", "integrations.freshchat.work"}) do
  assert(listed[name], name .. " is not listed")
end
local under = lua_list_docs("integrations.freshchat.")
assert(#under == #FUNCTIONS + 3 + 2, json.encode(under)) -- the functions, the three guides, the two accounts
for _, guide in ipairs({"accounts", "errors", "examples"}) do
  assert(lua_read_doc("integrations.freshchat." .. guide):find("^# "), guide)
end
for _, name in ipairs(under) do
  assert(name:sub(1, 23) == "integrations.freshchat.", name)
end
assert(#lua_list_docs("no-such-prefix") == 0 and json.encode(lua_list_docs("no-such-prefix")) == "[]")

-- Search: tables of page, title and snippet, best first.
local hits = lua_search_docs("agent email")
assert(#hits >= 1)
for _, hit in ipairs(hits) do
  assert(type(hit.page) == "string" and type(hit.title) == "string" and type(hit.snippet) == "string")
  assert(listed[hit.page], hit.page)
end
assert(hits[1].page == "integrations.freshchat.get_agent" or hits[1].page == "integrations.freshchat.list_agents",
  hits[1].page)
assert(lua_search_docs("create conversation")[1].page == "integrations.freshchat.create_conversation")
assert(#lua_search_docs("zzzqqqxxx") == 0)

-- Misuse is a catchable error that says what to do.
local function message(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok)
  return (err:gsub("^script:%d+: ", ""))
end
assert(message(lua_read_doc, 5) == "lua_read_doc: expected a string, got number")
assert(message(lua_search_docs) == 'lua_search_docs: expected a query string, like lua_search_docs("agents")')
local unknown = message(lua_read_doc, "overveiw")
assert(unknown:find("^lua_read_doc: Unknown doc page 'overveiw'%. Did you mean: overview%?"), unknown)
assert(unknown:find("lua_list_docs() lists all " .. #pages .. " pages.", 1, true), unknown)

return {pages = #pages, hits = #hits}
