-- Results are plain Lua tables: arrays are sequences, nulls are nil or json.null, and json.encode
-- turns each table back into the JSON it came from.
local fc = app.integrations.freshchat

-- Arrays are 1-based sequences without holes: # and ipairs see every element.
local page = fc.list_agents({per_page = 100})
assert(#page.agents == page.pagination.total_items, #page.agents .. " agents, " .. page.pagination.total_items)
local seen = 0
for i, agent in ipairs(page.agents) do
  seen = seen + 1
  assert(i == seen and type(agent.id) == "string")
end
assert(seen == #page.agents and page.agents[0] == nil and page.agents[#page.agents + 1] == nil)
assert(#page.agents[1].groups >= 1 and type(page.agents[1].groups[1]) == "string")

-- JSON null is nil in an object ...
local person = json.decode('{"name": "Ada", "phone": null}')
assert(person.phone == nil)
local keys = {}
for key in pairs(person) do keys[#keys + 1] = key end
assert(table.concat(keys, ",") == "name", table.concat(keys, ","))

-- ... and the sentinel json.null inside an array, so the array keeps its length.
local decoded = json.decode('{"tags": ["a", null, "c"], "note": null, "nested": [[null], []]}')
assert(#decoded.tags == 3 and decoded.tags[2] == json.null and decoded.tags[3] == "c")
assert(decoded.note == nil)
assert(#decoded.nested[1] == 1 and decoded.nested[1][1] == json.null and #decoded.nested[2] == 0)
local count = 0
for _, tag in ipairs(decoded.tags) do count = count + 1; assert(tag ~= nil) end
assert(count == 3)
assert(tostring(json.null) == "null" and json.encode(json.null) == "null")
assert(not pcall(function() json.null.x = 1 end), "json.null cannot be modified")

-- json.encode round trips, empty arrays and empty objects included (keys come out sorted).
local cases = {
  '[]', '{}', '[[],{}]', '{"a":[],"b":{}}', '[1,null,3]', '{"tags":["a",null,"c"]}',
  '{"n":1.5,"s":"x\\ny","t":true,"u":false}', '[{"id":"a","items":[]},{"id":"b","items":[{}]}]',
}
for _, text in ipairs(cases) do
  local again = json.encode(json.decode(text))
  assert(again == text, text .. " came back as " .. again)
end
assert(json.encode(json.array({})) == "[]" and json.encode({}) == "{}")
assert(json.encode({1, 2, 3}) == "[1,2,3]" and json.encode({a = 1}) == '{"a":1}')

-- An API result round trips too: an empty page stays an empty array, not an object.
local empty = fc.list_groups({page = 99})
assert(#empty.groups == 0, json.encode(empty.groups))
assert(json.encode(empty.groups) == "[]", json.encode(empty.groups))
assert(json.encode(json.decode(json.encode(empty))) == json.encode(empty))
local agent = fc.get_agent("agent-123")
assert(json.encode(json.decode(json.encode(agent))) == json.encode(agent))
assert(json.decode(json.encode(agent)).groups[1] == agent.groups[1])

-- Every conversation carries both id and conversation_id, whatever call returned it.
local list = fc.list_conversations({per_page = 10})
assert(#list.conversations == 10)
for _, conv in ipairs(list.conversations) do
  assert(conv.id ~= nil and conv.id == conv.conversation_id, json.encode(conv))
end
local one = fc.get_conversation("abc-123-def")
assert(one.id == "abc-123-def" and one.conversation_id == "abc-123-def" and one.status == "assigned")
assert(one.inbox_id == "channel-789" and one.inbox_id == one.channel_id)
assert(#one.messages >= 2 and one.messages[1].actor_type == "user", json.encode(one.messages))
assert(one.messages[1].created_time <= one.messages[#one.messages].created_time, "oldest first")
assert(type(one.created_time) == "string")

-- Integers stay integers, strings stay strings.
assert(math.type(list.pagination.total_items) == "integer")
assert(math.type(one.conversation_internal_id) == "integer")

return {agents = #page.agents, round_trips = #cases}
