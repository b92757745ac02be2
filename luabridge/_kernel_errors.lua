-- The kernel's errors as facts, and what it adds to a script's uncaught error (see _kernel.lua, which loads
-- this part the first time a run needs it). `K` is what the kernel shares with its parts.

local K = ...
local ERROR_FIELDS, copy_fields, to_json, has_tostring = K.ERROR_FIELDS, K.copy_fields, K.to_json, K.has_tostring
local with_host, HOST = K.with_host, K.HOST
local next, rawget, type, select, tostring = K.next, K.rawget, K.type, K.select, K.tostring
local real_error, real_pcall, real_setmetatable = K.real_error, K.real_pcall, K.real_setmetatable
local s_find, s_sub, s_match = K.s_find, K.s_sub, K.s_match

local part = {}

-- Errors as facts. A bridge error is a table a script can read (`err.type`, `err.status`...) that acts as
-- its message wherever a string would be used (tostring, `..`, `#`, `err:find(...)`). Its fields live out of
-- the script's reach, keyed by the value: the value itself is an empty proxy whose metatable is protected,
-- so a script reads copies of plain strings and numbers and can change nothing the kernel reports.
local ERROR_FIELD_NAMES = {"type", "message", "function", "account", "status", "code"}

local function as_message(v)
  local fields = ERROR_FIELDS[v]
  if fields then return fields.message end
  return v
end

local ERROR_MT = {
  __metatable = false,
  __index = function(e, key)
    local value = ERROR_FIELDS[e][key]
    if value ~= nil then return value end
    local method = type(key) == "string" and rawget(K.STRING_LIB, key)
    if type(method) == "function" then
      return function(self, ...) return method(as_message(self), ...) end
    end
    return nil
  end,
  __newindex = function() real_error("error values are read-only", 2) end,
  __tostring = function(e) return ERROR_FIELDS[e].message end,
  __concat = function(a, b) return as_message(a) .. as_message(b) end,
  __len = function(e) return #ERROR_FIELDS[e].message end,
  __pairs = function(e) return next, copy_fields(ERROR_FIELDS[e]), nil end,
}

-- `...` is the host's facts, in the order of ERROR_FIELD_NAMES after `message`: only strings and
-- numbers are kept.
function part.error_value(kind, message, ...)
  local fields = {type = kind, message = message}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "string" or type(v) == "number" then fields[ERROR_FIELD_NAMES[i + 2]] = v end
  end
  local e = real_setmetatable({}, ERROR_MT)
  ERROR_FIELDS[e] = fields
  return e
end

-- A table raised as an error, as text: its __tostring or else its JSON (`error({code = 42})` says
-- `{"code":42}`). A table's __tostring runs with the limits still armed, so one that loops or allocates
-- without end is stopped like any other code.
function part.describe_table(e)
  if has_tostring(e) then
    local ok, text = real_pcall(tostring, e)
    if ok and type(text) == "string" then return text end
  else
    local ok, text = real_pcall(to_json, e, false)
    if not (ok and text) then ok, text = real_pcall(to_json, e, true) end
    if ok and type(text) == "string" then return text end
  end
end

-- Hints for the names agents reach for that the sandbox does not have, added to an uncaught error.
local MISSING_GLOBALS = {
  require = "there are no modules to require: json is already a global, with json.encode and json.decode, "
    .. "and integrations are under app.integrations",
  io = "io is not available in the sandbox: print() writes to the run's output, and a script's "
    .. "return value goes back to the host",
  debug = "debug is not available in the sandbox",
  package = "package is not available in the sandbox: there are no modules to load",
  dofile = "dofile is not available in the sandbox: there are no files; load(text) compiles a string",
  loadfile = "loadfile is not available in the sandbox: there are no files; load(text) compiles a string",
  loadstring = "loadstring is Lua 5.1: in Lua 5.4 it is load(text)",
  unpack = "unpack is Lua 5.1: in Lua 5.4 it is table.unpack",
  collectgarbage = "collectgarbage is not available in the sandbox",
  python = "the host is not reachable from scripts",
}
local MISSING_OS = {getenv = true, execute = true, exit = true, remove = true, rename = true, tmpname = true,
                    setlocale = true}
local SANDBOX_PAGE = 'lua_read_doc("sandbox") lists what a script can use'

-- `app.integrations.<name>` for a global named like an integration (`shop`) or like one of its
-- functions (`shop_list_items`, as the function or its short name), else nil.
local function integration_path(name)
  if #name > 100 then return nil end
  local function found(path, key)
    local ok, status = real_pcall(with_host, HOST, "resolve", path, key)
    return ok and (status == "namespace" or status == "function")
  end
  if found("app.integrations", name) then return "app.integrations." .. name end
  local start = 1
  for _ = 1, 8 do
    local cut = s_find(name, "_", start, true)
    if not cut then break end
    local integration, short = s_sub(name, 1, cut - 1), s_sub(name, cut + 1)
    if integration ~= "" and short ~= "" and found("app.integrations", integration) then
      local path = "app.integrations." .. integration
      if found(path, short) then return path .. "." .. short end
      if found(path, name) then return path .. "." .. name end
    end
    start = cut + 1
  end
end

function part.hint(text)
  local what, kind, name = s_match(text, "attempt to (%a+) a nil value %((%a+) '([%w_]+)'%)")
  if not name then return nil end
  if kind == "global" then
    local path = integration_path(name)
    if path then return "use " .. path .. (what == "call" and "(...)" or "") .. ": integrations are under app.integrations" end
    if MISSING_GLOBALS[name] then return MISSING_GLOBALS[name] .. "; " .. SANDBOX_PAGE end
    if what == "call" then
      return "there is no global '" .. name .. "': integration functions are called as "
        .. "app.integrations.<name>.<function>(...), and " .. SANDBOX_PAGE
    end
  elseif kind == "field" and what == "call" and MISSING_OS[name] then
    return "os." .. name .. " is not available in the sandbox: os has clock, date, difftime and time only"
  end
end

return part
