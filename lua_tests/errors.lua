-- Errors are Lua errors a script catches with pcall; the message says what is wrong and what is valid.
local fc = app.integrations.freshchat

-- Calls `f(...)` under pcall, insists that it fails, and returns the message without the position
-- (`script:12: `) in front; `probe` below checks positions. A caught error is a table of facts that acts
-- as its message.
local function failure(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error")
  assert(type(err) == "table", "the error value is a table, got " .. type(err))
  assert(type(err.type) == "string" and err.message == tostring(err), "the error value has its facts")
  return (err:gsub("^script:%d+: ", ""))
end
local function expect(actual, wanted)
  assert(actual == wanted, "\nexpected: " .. wanted .. "\n     got: " .. actual)
end

-- Validation: nothing is sent.
expect(failure(fc.list_conversations, {status = "opne"}),
  "freshchat.list_conversations: parameter 'status' must be one of \"new\", \"open\", \"pending\", "
  .. "\"resolved\", \"closed\"; got a string \"opne\". Did you mean \"open\"?")
expect(failure(fc.list_agents, {per_page = 500}),
  "freshchat.list_agents: parameter 'per_page' must be at most 100, got 500")
expect(failure(fc.list_agents, {page = 0}), "freshchat.list_agents: parameter 'page' must be at least 1, got 0")
expect(failure(fc.list_groups, {page = 1.5}),
  "freshchat.list_groups: parameter 'page' must be a whole number (an integer), got 1.5")
expect(failure(fc.list_agents, {pagee = 2}),
  "freshchat.list_agents: unknown parameter 'pagee'. Did you mean 'page'? Valid parameters: page, per_page")
expect(failure(fc.list_conversations, {page = 0, limit = 3}),
  "freshchat.list_conversations: 2 problems with the arguments:\n"
  .. "- parameter 'page' must be at least 1, got 0\n"
  .. "- unknown parameter 'limit'. Valid parameters: page, per_page, status, inbox_id")
expect(failure(fc.get_agent), "freshchat.get_agent: missing required parameter 'id' (a string: The agent ID)")
expect(failure(fc.get_agent, 5), "freshchat.get_agent: parameter 'id' must be a string, got a number 5")
expect(failure(fc.get_agent, "a", "b"),
  "freshchat.get_agent expects one table of named parameters, like freshchat.get_agent({id = \"...\"}), "
  .. "or just its 'id'; got 2 arguments")
expect(failure(fc.list_agents, "x"),
  "freshchat.list_agents expects one table of named parameters, like freshchat.list_agents({page = 1}); "
  .. "got a string \"x\"")
expect(failure(fc.create_conversation, {user_id = "user-456"}),
  "freshchat.create_conversation: missing required parameter 'initial_message' (a string: First message in "
  .. "the conversation)")
expect(failure(fc.get_conversation, {id = "../agents"}),
  "freshchat.get_conversation: parameter 'id' must not contain '/': an id is a single path segment "
  .. "(got \"../agents\")")

-- HTTP: Freshchat's answer, named by function, status, enum and message.
expect(failure(fc.get_agent, "no-such-agent"), "freshchat.get_agent: HTTP 404 AGENT_NOT_FOUND: agent not found")
expect(failure(fc.work.get_conversation, "no-such-conversation"),
  "freshchat.get_conversation: HTTP 404 CONVERSATION_NOT_FOUND: conversation not found")
expect(failure(fc.create_conversation, {user_id = "nobody", initial_message = "hello"}),
  "freshchat.create_conversation: HTTP 404 USER_NOT_FOUND: user not found")
expect(failure(fc.create_conversation, {user_id = "user-456", initial_message = "   "}),
  "freshchat.create_conversation: HTTP 400 INVALID_VALUE: messages[0].message_parts[0].text.content must be a "
  .. "non-empty string")

-- Lookup: an unknown name lists what exists. Chunks named "probe" pin the position in front of the message.
local function probe(code)
  local ok, err = pcall(load(code, "=probe"))
  assert(not ok, "expected an error from: " .. code)
  return tostring(err)
end
local FUNCTIONS = "Functions: list_conversations, get_conversation, create_conversation, list_agents, get_agent, "
  .. "list_groups, get_current_user"
expect(probe("return app.integrations.freshchat.list_convos()"),
  "probe:1: Unknown function or account: app.integrations.freshchat.list_convos. Did you mean: "
  .. "list_conversations, list_groups, list_agents? " .. FUNCTIONS .. ". Accounts: default, work")
expect(probe("return app.integrations.freshchat.support.list_agents()"),
  "probe:1: Unknown function or account: app.integrations.freshchat.support. " .. FUNCTIONS
  .. ". Accounts: default, work")
expect(probe("return app.integrations.freshchat.work.list_agentz()"),
  "probe:1: Unknown function: app.integrations.freshchat.work.list_agentz. Did you mean: list_agents, get_agent, "
  .. "freshchat_list_agents? " .. FUNCTIONS)
expect(probe("return app.integrations.zendesk.list_tickets()"),
  "probe:1: Unknown integration: app.integrations.zendesk. Integrations: freshchat")
expect(failure(lua_read_doc, "integrations.freshchat.list_convos"),
  "lua_read_doc: Unknown doc page 'integrations.freshchat.list_convos'. Did you mean: "
  .. "integrations.freshchat.list_conversations? lua_list_docs() lists all " .. #lua_list_docs() .. " pages.")

-- The position is the caller's line, as for any Lua error raised with level 2.
expect(probe("local agent = app.integrations.freshchat.get_agent(5)"),
  "probe:1: freshchat.get_agent: parameter 'id' must be a string, got a number 5")
expect(probe("\n\nlocal agent = app.integrations.freshchat.get_agent('no-such-agent')"),
  "probe:3: freshchat.get_agent: HTTP 404 AGENT_NOT_FOUND: agent not found")

-- The facts of an HTTP error, read without parsing its message.
local _, err = pcall(fc.get_agent, "no-such-agent")
assert(err.type == "http" and err.status == 404 and err["function"] == "freshchat.get_agent", tostring(err))
assert(err.account == "default" and err:find("404", 1, true))
local _, work_err = pcall(fc.work.get_agent, "no-such-agent")
assert(work_err.account == "work", tostring(work_err))

-- A caught error leaves the script free to go on: the next call works.
local agent = fc.get_agent("agent-123")
assert(agent.id == "agent-123")

-- error() with a table value still reaches pcall as that table.
local ok, value = pcall(error, {code = 42})
assert(not ok and type(value) == "table" and value.code == 42)

return "ok"
