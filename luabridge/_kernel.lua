-- The sandbox kernel: trusted Lua that runs once in each fresh runtime, in the real globals.
--
-- It builds the script's environment from an allow-list, installs the limits (an instruction hook that
-- also checks the wall clock, sticky once tripped and re-raised by every wrapper that could catch it),
-- and turns values into JSON text on the way out. Everything it needs from the real globals is captured
-- in locals first: the script may change its own `string` or `table` copies without touching the kernel.
-- The host hands in the few Python callables the kernel needs; a run's settings come with `run`.
--
-- No Python object ever reaches the script, by construction rather than by care at each call site:
-- * every Python callable is called here, through `real_pcall`, and only its checked reply (strings,
--   numbers, booleans, nil and tables the host converter built from JSON) goes on; whatever lupa or the
--   host raises, an exception object included, is dropped and replaced by a plain string;
-- * every catcher the script has (pcall, xpcall and its handler, coroutine resume, wrap and close) turns
--   an error value of type userdata into a plain string;
-- * the metatable that lupa shares between all wrapped Python objects is neutered below: indexing,
--   calling or printing one fails with a plain message, so an object that slipped through is inert.

local NOW, EMIT, MEMORY_ON, HOST, CALL = ...

local debug_sethook, debug_getinfo, raw_getmetatable = debug.sethook, debug.getinfo, debug.getmetatable
local gc_count = collectgarbage
local real_pcall, real_xpcall, real_error, real_load = pcall, xpcall, error, load
local real_setmetatable, real_getmetatable = setmetatable, getmetatable
local rawget, rawset, rawequal, rawlen, next, type, select = rawget, rawset, rawequal, rawlen, next, type, select
local tostring, tonumber, ipairs, pairs = tostring, tonumber, ipairs, pairs
local math_tointeger = math.tointeger
local co_create, co_resume, co_wrap, co_close = coroutine.create, coroutine.resume, coroutine.wrap, coroutine.close
local co_status = coroutine.status
local s_rep, s_format, s_gsub, s_byte, s_find = string.rep, string.format, string.gsub, string.byte, string.find
local s_sub, s_match = string.sub, string.match
local utf8_len = utf8.len
local t_concat, t_sort, t_pack, t_unpack = table.concat, table.sort, table.pack, table.unpack
local math_type, math_huge = math.type, math.huge

-- `host(operation, ...)` is the one door to the host for everything that returns data, and `call` its
-- shortcut for the usual integration call (each Python object handed to Lua costs start-up time, so there
-- are few).
-- The run's limits, set by `run`: the kernel is loaded before its script (and its limits) arrive.
local DEADLINE, TIMEOUT, MAX_RESULT, MAX_INSTRUCTIONS, MAX_MEMORY, MAX_OUTPUT
local MEMERR = "not enough memory"
local HOST_ERROR = "internal error in the host (a bug in the host, logged there)"
local MAX_MESSAGE = 8192        -- bytes of an error message the host is handed; the rest is cut
local SOFT_MEMORY = math.huge   -- Lua's own count (KiB) past which the run trips; set by `run`

-- Neuter the metatable lupa shares between every wrapped Python object (its own entries were captured
-- first: `py_call` is how the kernel, and only the kernel, still calls the host).
local PY_MT = raw_getmetatable(HOST)
local py_call = rawget(PY_MT, "__call")
local function inert() real_error("host objects cannot be used from scripts", 2) end
rawset(PY_MT, "__call", inert)
rawset(PY_MT, "__index", inert)
rawset(PY_MT, "__newindex", inert)
rawset(PY_MT, "__tostring", function() return "host object" end)
rawset(PY_MT, "__metatable", false)

-- Limits ------------------------------------------------------------------------------------------------

local STEP = 1000              -- instructions between two hook calls
local COROUTINE_COST = 1000    -- charged per coroutine created or resumed, so short ones cannot hide
local tripped = nil            -- {kind, message} once a limit is reached; never cleared
local counted = 0
local printed = 0

local function trip(kind, message)
  if not tripped then tripped = {kind = kind, message = message} end
  real_error(tripped.message, 0)
end

-- The wall clock; a clock that cannot be read counts as past the deadline.
local function now()
  local ok, t = real_pcall(py_call, NOW)
  if ok and type(t) == "number" then return t end
  return math_huge
end

local function trip_memory()
  trip("memory", s_format("memory limit of %d bytes exceeded", MAX_MEMORY))
end

local function charge(cost)
  if tripped then real_error(tripped.message, 0) end
  counted = counted + cost
  if counted > MAX_INSTRUCTIONS then
    trip("instructions", s_format("instruction limit of %d exceeded", MAX_INSTRUCTIONS))
  end
  if now() > DEADLINE then
    trip("timeout", s_format("time limit of %g s exceeded", TIMEOUT))
  end
  -- The allocator's own limit sits a little above this one, so a script that grows past its limit is
  -- stopped here, uncatchably, rather than by an allocation failure a handler might swallow.
  if gc_count("count") > SOFT_MEMORY then trip_memory() end
end

local function hook()
  charge(STEP)
end

-- An error value as a script may see it: a Python object (which only a host failure could produce) is
-- replaced by a plain string.
local function clean(e)
  if type(e) == "userdata" then return HOST_ERROR end
  return e
end

-- After anything that can catch an error: a tripped limit or a memory error keeps propagating.
local function after_catch(ok, ...)
  if tripped then real_error(tripped.message, 0) end
  if ok then return ok, ... end
  local e = ...
  if e == MEMERR or gc_count("count") > SOFT_MEMORY then trip_memory() end
  return false, clean(e)
end

-- Error kinds of the messages the bridge raised, so the host can report a script's uncaught error
-- with the right type, even when the script re-raises the message as a string.
local ERROR_KINDS = {}

-- Errors as facts. A bridge error is a table a script can read (`err.type`, `err.status`...) that acts as
-- its message wherever a string would be used (tostring, `..`, `#`, `err:find(...)`). Its fields live out of
-- the script's reach, keyed by the value: the value itself is an empty proxy whose metatable is protected,
-- so a script reads copies of plain strings and numbers and can change nothing the kernel reports.
local ERROR_FIELDS = real_setmetatable({}, {__mode = "k"})
local ERROR_FIELD_NAMES = {"type", "message", "function", "account", "status", "code"}
local STRING_LIB          -- the sandbox's string table (strings' methods), set when it is built

local function as_message(v)
  local fields = ERROR_FIELDS[v]
  if fields then return fields.message end
  return v
end

local function copy_fields(fields)
  local copy = {}
  for k, v in next, fields do copy[k] = v end
  return copy
end

local ERROR_MT = {
  __metatable = false,
  __index = function(e, key)
    local value = ERROR_FIELDS[e][key]
    if value ~= nil then return value end
    local method = type(key) == "string" and rawget(STRING_LIB, key)
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
local function error_value(kind, message, ...)
  local fields = {type = kind, message = message}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "string" or type(v) == "number" then fields[ERROR_FIELD_NAMES[i + 2]] = v end
  end
  local e = real_setmetatable({}, ERROR_MT)
  ERROR_FIELDS[e] = fields
  return e
end

-- The position is the script's line that made the call; when that frame is gone (a tail call such as
-- `return f(...)` inside a pcall'd function), the nearest script line above it, rather than none.
local function raise_at_caller(kind, message, ...)
  for level = 3, 20 do
    local info = debug_getinfo(level, "Sl")
    if not info then break end
    if info.currentline and info.currentline > 0 and info.source ~= "=kernel" then
      message = info.short_src .. ":" .. info.currentline .. ": " .. message
      break
    end
  end
  ERROR_KINDS[message] = kind
  real_error(error_value(kind, message, ...), 0)
end

-- JSON ----------------------------------------------------------------------------------------------------

local ARRAYS = real_setmetatable({}, {__mode = "k"})   -- tables that encode as arrays even when empty
local NULL = real_setmetatable({}, {
  __metatable = false,
  __tostring = function() return "null" end,
  __newindex = function() real_error("json.null cannot be modified", 2) end,
})
local function is_null(v)
  return rawequal(v, NULL)
end

local function has_tostring(v)
  local mt = raw_getmetatable(v)
  return mt ~= nil and rawget(mt, "__tostring") ~= nil
end

local function valid_utf8(s)
  if utf8_len(s) then return s end
  local parts, i, n = {}, 1, #s
  while i <= n do
    local len, bad = utf8_len(s, i)
    if len then parts[#parts + 1] = s_sub(s, i); break end
    parts[#parts + 1] = s_sub(s, i, bad - 1)
    parts[#parts + 1] = "\u{FFFD}"
    i = bad + 1
  end
  return t_concat(parts)
end

-- The longest prefix of valid UTF-8 `s` of at most `size` bytes that does not cut a character in two.
local function utf8_prefix(s, size)
  if size >= #s then return s end
  while size > 0 do
    local b = s_byte(s, size + 1)
    if b < 0x80 or b >= 0xC0 then break end   -- the next byte starts a character: cut before it
    size = size - 1
  end
  return s_sub(s, 1, size)
end

local ESCAPES = {['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n',
                 ['\r'] = '\\r', ['\t'] = '\\t'}
local function escape_char(c)
  return ESCAPES[c] or s_format("\\u%04x", s_byte(c))
end

local function quote(s)
  return '"' .. s_gsub(valid_utf8(s), '[%c"\\]', escape_char) .. '"'
end

local function number_text(v)
  if math_type(v) == "integer" then return s_format("%d", v) end
  if v ~= v or v == math_huge or v == -math_huge then return nil end
  local text = s_format("%.14g", v)
  if tonumber(text) ~= v then text = s_format("%.17g", v) end
  if not s_find(text, "[%.eE]") then text = text .. ".0" end
  return text
end

local MAX_DEPTH = 200

-- Encodes `v` into `out`. `loose` is for print: values JSON cannot hold are shown as <function> and so on
-- instead of failing; `tag` is for arguments sent to the host: a function, thread or userdata becomes
-- {"\u0000lua": "<type>"} so the host can word the error. Returns nil on success, or an error message.
local encode

local function encode_table(t, out, depth, seen, loose, tag)
  if seen[t] then
    if loose then out[#out + 1] = "<cycle>"; return end
    return "table contains a cycle (a table that contains itself)"
  end
  if depth > MAX_DEPTH then
    if loose then out[#out + 1] = "<nested too deep>"; return end
    return "table is nested more than " .. MAX_DEPTH .. " levels deep"
  end
  seen[t] = true
  local n, count, sequence = rawlen(t), 0, true
  for k in next, t do
    count = count + 1
    if sequence and not (math_type(k) == "integer" and k >= 1 and k <= n) then sequence = false end
  end
  local err
  if sequence and (count > 0 or ARRAYS[t]) then
    out[#out + 1] = "["
    for i = 1, n do
      if i > 1 then out[#out + 1] = loose and ", " or "," end
      err = encode(rawget(t, i), out, depth + 1, seen, loose, tag)
      if err then return err end
    end
    out[#out + 1] = "]"
  else
    local keys, names = {}, {}
    for k in next, t do
      local kt, name = type(k), nil
      if kt == "string" then name = k
      elseif kt == "number" then name = number_text(k)
      elseif loose then name = "<" .. kt .. ">"
      end
      if not name then return "cannot use a " .. kt .. " as a JSON object key" end
      keys[#keys + 1] = name
      names[name] = k
    end
    t_sort(keys)
    out[#out + 1] = "{"
    for i, name in ipairs(keys) do
      if i > 1 then out[#out + 1] = loose and ", " or "," end
      out[#out + 1] = quote(name)
      out[#out + 1] = loose and ": " or ":"
      err = encode(rawget(t, names[name]), out, depth + 1, seen, loose, tag)
      if err then return err end
    end
    out[#out + 1] = "}"
  end
  seen[t] = nil
end

encode = function(v, out, depth, seen, loose, tag)
  local vt = type(v)
  if vt == "string" then out[#out + 1] = quote(v)
  elseif vt == "number" then
    local text = number_text(v)
    if not text then
      if loose then text = tostring(v) else return "cannot encode " .. tostring(v) .. " as a JSON number" end
    end
    out[#out + 1] = text
  elseif vt == "boolean" then out[#out + 1] = v and "true" or "false"
  elseif vt == "nil" or is_null(v) then out[#out + 1] = "null"
  elseif vt == "table" then
    local fields = ERROR_FIELDS[v]
    if fields then v = copy_fields(fields) end
    return encode_table(v, out, depth, seen, loose, tag)
  elseif loose then out[#out + 1] = "<" .. vt .. ">"
  elseif tag then out[#out + 1] = '{"\\u0000lua":"' .. vt .. '"}'
  else return "cannot encode a " .. vt .. " value"
  end
end

local function to_json(v, loose, tag)
  local out = {}
  local err = encode(v, out, 0, {}, loose, tag)
  if err then return nil, err end
  return t_concat(out)
end

-- Host calls ----------------------------------------------------------------------------------------------

-- Bytes left before the memory limit: what a value the host converts may take.
local function room()
  return (SOFT_MEMORY - gc_count("count")) * 1024
end

local REPLY_STATUS = {ok = true, error = true, trip = true, namespace = true, ["function"] = true}
local REPLY_VALUE = {string = true, number = true, boolean = true, table = true, ["nil"] = true}
-- Values lupa hands over without allocating (see with_host).
local FREE_VALUE = {number = true, boolean = true, table = true, ["nil"] = true}

local function counted(...)
  return select("#", ...), ...
end

-- Python conversions run with the memory limit lifted (a limit hit while lupa converts aborts or hangs
-- the process): each host callback lifts it as it starts. After an "ok" whose values are tables, numbers,
-- booleans or nil, the host has put it back itself (handing those over allocates nothing); after any other
-- reply it comes back here, right after the reply is converted. The test here is the host's, on the same
-- values, so that it can only skip a restore the host made: an answer of at most three values (a value
-- and its two fix-up lists) all of those kinds. Whatever the call raised is dropped; a reply of any other
-- shape is a host failure too. A reply is a status and at most six values (an error's words and facts);
-- anything past them is dropped unread.
local function checked_reply(n, ok, status, a, b, c, d, e, f)
  if not (n <= 5 and ok and status == "ok" and FREE_VALUE[type(a)] and FREE_VALUE[type(b)]
          and FREE_VALUE[type(c)]) then
    if not real_pcall(py_call, MEMORY_ON) then
      trip("memory", "internal error: the memory limit could not be restored")
    end
    if not ok or not REPLY_STATUS[status] or not (REPLY_VALUE[type(a)] and REPLY_VALUE[type(b)]
        and REPLY_VALUE[type(c)] and REPLY_VALUE[type(d)] and REPLY_VALUE[type(e)] and REPLY_VALUE[type(f)]) then
      return "error", "runtime", HOST_ERROR
    end
  end
  return status, a, b, c, d, e, f
end

local function with_host(...)
  return checked_reply(counted(real_pcall(py_call, ...)))
end

-- Fix-up paths travel flat: `n, key1, ..., keyn, n, ...` (see _values.py).
local function finish_value(value, empties, nulls)
  if empties then
    local i = 1
    while empties[i] do
      local depth, t = empties[i], value
      for j = i + 1, i + depth do t = t[empties[j]] end
      ARRAYS[t] = true
      i = i + depth + 1
    end
    i = 1
    while nulls[i] do
      local depth, t = nulls[i], value
      for j = i + 1, i + depth - 1 do t = t[nulls[j]] end
      t[nulls[i + depth]] = NULL
      i = i + depth + 1
    end
  end
  return value
end

-- One result from the host: "ok", value[, empties, nulls] | "trip", kind, message
-- | "error", kind, message[, function, account, status, code]
local function deliver(status, a, b, c, d, e, f)
  if status == "ok" then
    if b == nil then return a end
    return finish_value(a, b, c)
  end
  if status == "trip" then trip(a, b) end
  raise_at_caller(a, b, c, d, e, f)
end

local NAMESPACES = real_setmetatable({}, {__mode = "k"})

-- The usual argument, a table of named strings, numbers and booleans, goes to the host as its keys and values
-- (no JSON round trip, no table to walk from Python); anything else goes as JSON text, so the host can word
-- what is wrong with it. Returns nil for a table that is not flat.
local function flat_pair(k, v)
  if type(k) ~= "string" or not utf8_len(k) then return false end
  local vt = type(v)
  if vt == "string" then return utf8_len(v) ~= nil end
  return vt == "number" or vt == "boolean"
end

local function flat_pairs(t)
  local pairs, n = {}, 0
  for k, v in next, t do
    if not flat_pair(k, v) then return nil end
    pairs[n + 1], pairs[n + 2] = k, v
    n = n + 2
  end
  pairs.n = n
  return pairs
end

-- An integration function as a script sees it: `id` is the host's number for it. The host checks that the
-- answer fits in what is left of the memory limit before it is converted: `room()` here, and its own count
-- of the same for the usual call.
local function integration_function(id)
  return function(...)
    if tripped then real_error(tripped.message, 0) end
    local nargs = select("#", ...)
    local first = ...
    if nargs > 0 and NAMESPACES[first] ~= nil then
      return deliver(with_host(HOST, "call", id, nargs, nil, true, nil, room()))
    end
    if nargs == 1 and type(first) == "table" then
      local k, v = next(first)
      if k == nil then return deliver(with_host(CALL, id)) end
      if next(first, k) == nil and flat_pair(k, v) then  -- the commonest: one named argument
        return deliver(with_host(CALL, id, k, v))
      end
      local pairs = flat_pairs(first)
      if pairs then return deliver(with_host(CALL, id, t_unpack(pairs, 1, pairs.n))) end
    end
    local args, err = nil, nil
    if nargs > 0 then args, err = to_json(first, false, true) end
    return deliver(with_host(HOST, "call", id, nargs, args, false, err, room()))
  end
end

local function namespace(path)
  local ns = {}
  NAMESPACES[ns] = path
  return real_setmetatable(ns, {
    __index = function(t, key)
      if type(key) ~= "string" then
        local shown = type(key) == "number" and tostring(key) or type(key)
        raise_at_caller("lookup", path .. " has no field [" .. shown .. "]: its fields are names (strings)")
      end
      local status, found, message = with_host(HOST, "resolve", path, valid_utf8(key))
      local value
      if status == "namespace" then value = namespace(found)
      elseif status == "function" then
        value = integration_function(found)
      else raise_at_caller(found, message) end
      rawset(t, key, value)
      return value
    end,
    __newindex = function() raise_at_caller("runtime", path .. " is read-only") end,
    __metatable = false,
  })
end

-- The environment ----------------------------------------------------------------------------------------

local S = {}

-- Table constructors rather than a loop over names: this runs at the start of every run.
S.assert = assert
S.error = error
S.next = next
S.rawequal = rawequal
S.rawget = rawget
S.rawlen = rawlen
S.rawset = rawset
S.select = select
S.tonumber = tonumber
S.tostring = tostring
S.type = type
S._VERSION = _VERSION
S._G = S
S.math = {
  abs = math.abs, acos = math.acos, asin = math.asin, atan = math.atan, ceil = math.ceil, cos = math.cos, deg = math.deg, exp = math.exp, floor = math.floor, fmod =
  math.fmod, huge = math.huge, log = math.log, max = math.max, maxinteger = math.maxinteger, min = math.min,
  mininteger = math.mininteger, modf = math.modf, pi = math.pi, rad = math.rad, random = math.random, randomseed =
  math.randomseed, sin = math.sin, sqrt = math.sqrt, tan = math.tan, tointeger = math.tointeger, type = math.type,
  ult = math.ult,
}
S.table = {
  concat = table.concat, insert = table.insert, move = table.move, pack = table.pack, remove = table.remove, sort =
  table.sort, unpack = table.unpack,
}
S.utf8 = {
  char = utf8.char, charpattern = utf8.charpattern, codepoint = utf8.codepoint, codes = utf8.codes, len = utf8.len,
  offset = utf8.offset,
}
S.os = {
  clock = os.clock, date = os.date, difftime = os.difftime, time = os.time,
}
S.string = {
  byte = string.byte, char = string.char, find = string.find, format = string.format, gmatch = string.gmatch, gsub =
  string.gsub, len = string.len, lower = string.lower, match = string.match, pack = string.pack, packsize =
  string.packsize, rep = string.rep, reverse = string.reverse, sub = string.sub, unpack = string.unpack, upper =
  string.upper,
}
S.coroutine = {
  isyieldable = coroutine.isyieldable, running = coroutine.running, status = coroutine.status, yield =
  coroutine.yield,
}

STRING_LIB = S.string

-- Argument errors as the standard functions word them: the name the caller used, the caller's position.
-- `level` is the wrapper's stack level as seen from here (2 when the wrapper calls argerror itself).
local function argerror(index, fallback, message, level)
  level = level or 2
  local info = debug_getinfo(level, "n")
  real_error(s_format("bad argument #%d to '%s' (%s)", index, info and info.name or fallback, message), level + 1)
end

-- The error of a standard function that a wrapper called through `real_pcall`, raised as if the script
-- had called the function itself: named as the caller named it, at the caller's position (the kernel's
-- own frames have neither: its debug info is stripped, so a direct call would say '?' and no line).
-- Called by the wrapper, not as a tail call.
local function reraise_standard(e)
  if e == MEMERR then trip_memory() end
  local index, rest = s_match(type(e) == "string" and e or "", "^bad argument #(%d+) to '[^']*'(.*)$")
  local info = debug_getinfo(2, "n")
  if index and info and info.name then
    index = tonumber(index)
    if info.namewhat == "method" then index = index - 1 end
    if index == 0 then
      e = s_format("calling '%s' on bad self%s", info.name, rest)
    else
      e = s_format("bad argument #%d to '%s'%s", index, info.name, rest)
    end
  end
  real_error(e, 3)
end

-- Standard Lua refuses to build a string longer than this, with a catchable "resulting string too large".
local MAX_STRING = 0x7fffffff

local function rep_text(v)
  if type(v) == "string" then return v end
  if type(v) == "number" then return tostring(v) end
end

-- string.rep builds its result in one C call, before any hook runs: a result over the memory limit ends
-- the run before it is built, and one standard Lua refuses is refused by it, catchably, as there.
S.string.rep = function(...)
  local s, n, sep = ...
  local count = math_type(n) == "integer" and n or math_tointeger(tonumber(n) or 0.5)
  local text, separator = rep_text(s), sep == nil and "" or rep_text(sep)
  if count and text and separator and count > 0 and #text + #separator <= MAX_STRING // count then
    local size = #text * count + #separator * (count - 1)
    if size > MAX_MEMORY then
      trip("memory", s_format("string.rep would build %d bytes, over the memory limit of %d bytes", size, MAX_MEMORY))
    end
    return s_rep(...)
  end
  local ok, result = real_pcall(s_rep, ...)
  if ok then return result end
  reraise_standard(result)
end
-- Strings' methods are the sandbox's string table, so ("x"):rep(n) is capped too.
real_getmetatable("").__index = S.string

-- The run's randomness and clock are the host's per-run seed and start time, so that a run resumed after an
-- approval draws the same numbers and reads the same time as the run that paused (docs/writes.md).
local os_date, os_time, START = os.date, os.time, nil  -- START: set by `run`, with the seed
S.os.date = function(...)
  local ok, result
  if select("#", ...) < 2 or select(2, ...) == nil then
    local format = ...
    ok, result = real_pcall(os_date, format == nil and "%c" or format, START)
  else
    ok, result = real_pcall(os_date, ...)
  end
  if ok then return result end
  reraise_standard(result)
end
S.os.time = function(...)
  if (...) == nil then return START end
  local ok, result = real_pcall(os_time, ...)
  if ok then return result end
  reraise_standard(result)
end

-- ipairs and pairs of nil fail inside their C iterator, where Lua knows no position and no name; they
-- fail here instead, at the script's line: `for _, m in ipairs(conv.messages)` with no such field says where.
local function nil_checked(name, iterate)
  return function(...)
    if (...) == nil then
      argerror(1, name, select("#", ...) == 0 and "table expected, got no value" or "table expected, got nil")
    end
    return iterate(...)
  end
end
S.ipairs = nil_checked("ipairs", ipairs)
S.pairs = nil_checked("pairs", pairs)

local function check_arg(n, index, v, expected, fallback)
  if type(v) ~= expected then
    argerror(index, fallback, expected .. " expected, got " .. (n < index and "no value" or type(v)), 3)
  end
end

S.pcall = function(...)
  if select("#", ...) == 0 then argerror(1, "pcall", "value expected") end
  return after_catch(real_pcall(...))
end

S.xpcall = function(...)
  local f, handler = ...
  check_arg(select("#", ...), 2, handler, "function", "xpcall")
  -- A handler runs with hooks off after a hook's error, so it is skipped once a limit is reached.
  local function guarded(e)
    if tripped or e == MEMERR then return e end
    return handler(clean(e))
  end
  return after_catch(real_xpcall(f, guarded, select(3, ...)))
end

local function create_coroutine(f)
  charge(COROUTINE_COST)
  local co = co_create(f)
  debug_sethook(co, hook, "", STEP)
  return co
end

S.coroutine.create = function(...)
  check_arg(select("#", ...), 1, ..., "function", "coroutine.create")
  return create_coroutine(...)
end

S.coroutine.resume = function(...)
  check_arg(select("#", ...), 1, ..., "thread", "coroutine.resume")
  charge(COROUTINE_COST)
  return after_catch(co_resume(...))
end

S.coroutine.close = function(...)
  -- Once a limit is reached, nothing is closed: a coroutine the hook stopped has no hook left (Lua turns
  -- it off while a hook runs, and an error out of the hook never turns it back on), so its pending
  -- `<close>` handlers would run unchecked.
  if tripped then real_error(tripped.message, 0) end
  local co = ...
  check_arg(select("#", ...), 1, co, "thread", "coroutine.close")
  local status = co_status(co)
  if status == "running" or status == "normal" then
    real_error("cannot close a " .. status .. " coroutine", 2)
  end
  return after_catch(co_close(co))
end

-- Like the standard wrap: errors propagate with the caller's position (the tail call keeps the frame).
-- As there, a dead coroutine is closed first, and an error raised by a `<close>` handler replaces its own.
local function wrap_result(co, ok, ...)
  if tripped then real_error(tripped.message, 0) end
  if ok then return ... end
  local e = (...)
  if e ~= MEMERR and co_status(co) == "dead" then
    local closed, close_error = co_close(co)
    if tripped then real_error(tripped.message, 0) end
    if not closed then e = close_error end
  end
  e = clean(e)
  if e == MEMERR then trip_memory() end
  if type(e) == "string" then real_error(e, 2) end
  real_error(e, 0)
end

S.coroutine.wrap = function(...)
  check_arg(select("#", ...), 1, ..., "function", "coroutine.wrap")
  local co = create_coroutine(...)
  return function(...)
    charge(COROUTINE_COST)
    return wrap_result(co, co_resume(co, ...))
  end
end

-- A memory error inside load (its reader function's, or the compiler's own) comes back as load's
-- `nil, message` rather than as an error: it is a limit all the same.
local function after_load(fn, message)
  if tripped then real_error(tripped.message, 0) end
  if fn == nil and (message == MEMERR or gc_count("count") > SOFT_MEMORY) then trip_memory() end
  return fn, clean(message)
end

S.load = function(...)
  local chunk, name, mode, env = ...
  if select("#", ...) < 4 then env = S end
  if mode ~= nil and type(mode) == "string" and not s_find(mode, "t", 1, true) then
    return nil, "attempt to load a text chunk (mode is '" .. mode .. "')"
  end
  if type(chunk) == "function" then
    local reader = chunk
    chunk = function()
      local piece = reader()
      if tripped then real_error(tripped.message, 0) end
      return piece
    end
  end
  local ok, fn, message = real_pcall(real_load, chunk, name, "t", env)
  if not ok then reraise_standard(fn) end
  return after_load(fn, message)
end

S.setmetatable = function(...)
  local t, mt = ...
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    real_error("setmetatable: __gc metamethods are not allowed in the sandbox", 2)
  end
  if type(t) == "table" and (mt == nil or type(mt) == "table") and select("#", ...) >= 2 then
    local current = raw_getmetatable(t)
    if current == nil or rawget(current, "__metatable") == nil then return real_setmetatable(t, mt) end
  end
  local ok, result = real_pcall(real_setmetatable, ...)
  if ok then return result end
  reraise_standard(result)
end

S.getmetatable = function(...)
  if select("#", ...) == 0 then argerror(1, "getmetatable", "value expected") end
  local v = ...
  if type(v) ~= "table" then return nil end
  return real_getmetatable(v)
end

-- Output goes to the host as valid UTF-8; a host failure to take it loses that text, never the run.
local function emit(text)
  real_pcall(py_call, EMIT, text)
end

S.print = function(...)
  if tripped then real_error(tripped.message, 0) end  -- a run past its limit says nothing more
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do
    local v = select(i, ...)
    local text
    if type(v) == "table" and not has_tostring(v) then
      text = to_json(v, true)
    else
      text = tostring(v)
    end
    parts[i] = valid_utf8(text)
  end
  local line = t_concat(parts, "\t") .. "\n"
  local room = MAX_OUTPUT - printed
  printed = printed + #line
  if #line > room then
    if room > 0 then emit(utf8_prefix(line, room)) end
    trip("output", s_format("output limit of %d bytes exceeded", MAX_OUTPUT))
  end
  emit(line)
end

S.json = {
  null = NULL,
  encode = function(v)
    local text, err = to_json(v, false)
    if not text then real_error("json.encode: " .. err, 2) end
    return text
  end,
  decode = function(text)
    if type(text) ~= "string" then
      real_error("json.decode: expected a string, got " .. type(text), 2)
    end
    return deliver(with_host(HOST, "json_decode", valid_utf8(text)))
  end,
  array = function(t)
    if t == nil then t = {} end
    if type(t) ~= "table" then real_error("json.array: expected a table, got " .. type(t), 2) end
    ARRAYS[t] = true
    return t
  end,
}

-- The doc functions take one optional string; the host is handed it as valid UTF-8, and nothing else.
for _, name in ipairs({"lua_read_doc", "lua_list_docs", "lua_search_docs"}) do
  S[name] = function(...)
    local n, text = select("#", ...), ...
    if n > 1 then
      raise_at_caller("runtime", s_format("%s: expected at most one argument, got %d", name, n))
    end
    if text ~= nil and type(text) ~= "string" then
      raise_at_caller("runtime", name .. ": expected a string, got " .. type(text))
    end
    if text ~= nil then text = valid_utf8(text) end
    return deliver(with_host(HOST, name, text))
  end
end

S.app = namespace("app")

-- Running a script ----------------------------------------------------------------------------------------

-- An uncaught error as text: a bridge error's message, a string or number as it is, a table as its
-- __tostring or else its JSON (`error({code = 42})` says `{"code":42}`). A table's __tostring runs with
-- the limits still armed, so one that loops or allocates without end is stopped like any other code.
local function describe(e)
  if type(e) == "string" then return e end
  if type(e) == "number" then return tostring(e) end
  local fields = ERROR_FIELDS[e]
  if fields then return fields.message end
  if type(e) == "table" then
    if has_tostring(e) then
      local ok, text = real_pcall(tostring, e)
      if ok and type(text) == "string" then return text end
    else
      local ok, text = real_pcall(to_json, e, false)
      if not (ok and text) then ok, text = real_pcall(to_json, e, true) end
      if ok and type(text) == "string" then return text end
    end
  end
  return "(error object is a " .. type(e) .. " value)"
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

local function hint(text)
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

local function shorten(message)
  if #message <= MAX_MESSAGE then return message end
  local cut = utf8_prefix(message, MAX_MESSAGE)
  return cut .. s_format("... (%d more bytes)", #message - #cut)
end

local function finish_error(e)
  if tripped then debug_sethook(); return "limit", tripped.kind, tripped.message end
  if e == MEMERR then
    debug_sethook()
    return "limit", "memory", s_format("memory limit of %d bytes exceeded", MAX_MEMORY)
  end
  local text = describe(clean(e))
  debug_sethook()
  if tripped then return "limit", tripped.kind, tripped.message end
  local fields = ERROR_FIELDS[e]
  if fields then return "error", fields.type, shorten(valid_utf8(text)) end
  local advice = type(e) == "string" and hint(text)
  if advice then text = text .. " (" .. advice .. ")" end
  return "error", ERROR_KINDS[e] or "runtime", shorten(valid_utf8(text))
end

local function encode_results(results)
  if results.n == 0 then return "null" end
  if results.n == 1 then return to_json(results[1], false) end
  local list = {}
  for i = 1, results.n do list[i] = results[i] == nil and NULL or results[i] end
  ARRAYS[list] = true
  return to_json(list, false)
end

-- `compile` runs before the memory limit is armed (a script larger than the limit would otherwise fail
-- outside any protected call); `run` runs the compiled chunk, with the limit `soft_memory` (KiB of Lua's
-- own count) above which the hook stops the script, and the run's settings: the deadline, its limits,
-- and the seed and clock of its randomness and time.
-- The script's main chunk opens with a to-be-closed local on its first line: Lua then compiles its
-- `return f(...)` as an ordinary call, not a tail call, so an error raised in `f` still knows the
-- script's line (a tail call drops the caller's frame, and with it the line).
local KEEP_LINES = "local _ <close> = nil "

local function compile(code)
  local chunk, err = real_load(KEEP_LINES .. code, "=script", "t", S)
  if not chunk then return nil, shorten(valid_utf8(err)) end
  return chunk, nil
end

local function run(chunk, soft_memory, deadline, timeout, instructions, memory, output, result, seed, clock)
  DEADLINE, TIMEOUT, MAX_RESULT = deadline, timeout, result
  MAX_INSTRUCTIONS, MAX_MEMORY, MAX_OUTPUT = instructions, memory, output
  math.randomseed(seed)
  START = math_tointeger(clock // 1)
  SOFT_MEMORY = soft_memory
  debug_sethook(hook, "", STEP)
  local results = t_pack(real_pcall(chunk))
  if not results[1] then return finish_error(results[2]) end
  local ok, text, encode_err = real_pcall(encode_results, t_pack(t_unpack(results, 2, results.n)))
  if not ok then return finish_error(text) end
  debug_sethook()
  if tripped then return "limit", tripped.kind, tripped.message end
  if not text then return "error", "runtime", "the returned value cannot be converted to JSON: " .. encode_err end
  if #text > MAX_RESULT then
    return "limit", "output", s_format("returned value of %d bytes as JSON exceeds the limit of %d bytes", #text, MAX_RESULT)
  end
  return "ok", text
end

-- The limit a run reached, if any. The host asks after `run` raised instead of returning: the hook can
-- fire, and raise again, in the few instructions `run` executes after the script's protected call. The
-- host first clears the hook itself (`debug.sethook` is C: no instruction runs before it is off).
local function limit_reached()
  if tripped then return tripped.kind, tripped.message end
end

return compile, run, debug_sethook, limit_reached
