-- The sandbox kernel: trusted Lua that runs once in each fresh runtime, in the real globals.
--
-- It builds the script's environment from an allow-list, installs the limits (an instruction hook that
-- also checks the wall clock, sticky once tripped and re-raised by every wrapper that could catch it),
-- and turns values into JSON text on the way out. Everything it needs from the real globals is captured
-- in locals first: the script may change its own `string` or `table` copies without touching the kernel.
-- The host hands in `H`, a table of Python callbacks that never raise and return only plain data.

local H = ...

local debug_sethook, debug_getinfo, raw_getmetatable = debug.sethook, debug.getinfo, debug.getmetatable
local real_pcall, real_xpcall, real_error, real_load = pcall, xpcall, error, load
local real_setmetatable, real_getmetatable = setmetatable, getmetatable
local rawget, rawset, rawequal, rawlen, next, type, select = rawget, rawset, rawequal, rawlen, next, type, select
local tostring, tonumber, ipairs, pairs = tostring, tonumber, ipairs, pairs
local co_create, co_resume, co_wrap, co_close = coroutine.create, coroutine.resume, coroutine.wrap, coroutine.close
local co_status = coroutine.status
local s_rep, s_format, s_gsub, s_byte, s_find = string.rep, string.format, string.gsub, string.byte, string.find
local s_sub = string.sub
local utf8_len = utf8.len
local t_concat, t_sort, t_pack, t_unpack = table.concat, table.sort, table.pack, table.unpack
local math_type, math_huge = math.type, math.huge

-- `host(operation, ...)` is the one door to the host for everything that returns data (each Python object
-- handed to Lua costs start-up time, so there are few).
local now, emit, memory_on, host = H.now, H.emit, H.memory_on, H.host
local DEADLINE, TIMEOUT, MAX_RESULT = H.deadline, H.timeout, H.result
local MAX_INSTRUCTIONS, MAX_MEMORY, MAX_OUTPUT = H.instructions, H.memory, H.output
local MEMERR = "not enough memory"

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

local function charge(cost)
  if tripped then real_error(tripped.message, 0) end
  counted = counted + cost
  if counted > MAX_INSTRUCTIONS then
    trip("instructions", s_format("instruction limit of %d exceeded", MAX_INSTRUCTIONS))
  end
  if now() > DEADLINE then
    trip("timeout", s_format("time limit of %g s exceeded", TIMEOUT))
  end
end

local function trip_memory()
  trip("memory", s_format("memory limit of %d bytes exceeded", MAX_MEMORY))
end

local function hook()
  charge(STEP)
end

-- After anything that can catch an error: a tripped limit or a memory error keeps propagating.
local function after_catch(ok, ...)
  if tripped then real_error(tripped.message, 0) end
  if not ok and (...) == MEMERR then trip_memory() end
  return ok, ...
end

-- Error kinds of the messages the bridge raised, so the host can report a script's uncaught error
-- with the right type.
local ERROR_KINDS = {}

-- The position is the script's line that made the call; when that frame is gone (a tail call such as
-- `return f(...)` inside a pcall'd function), the nearest script line above it, rather than none.
local function raise_at_caller(kind, message)
  for level = 3, 20 do
    local info = debug_getinfo(level, "Sl")
    if not info then break end
    if info.currentline and info.currentline > 0 and info.source ~= "=kernel" then
      message = info.short_src .. ":" .. info.currentline .. ": " .. message
      break
    end
  end
  ERROR_KINDS[message] = kind
  real_error(message, 0)
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
  if depth > MAX_DEPTH then return "table is nested more than " .. MAX_DEPTH .. " levels deep" end
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
  elseif vt == "table" then return encode_table(v, out, depth, seen, loose, tag)
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

-- Python conversions run with the memory limit lifted (a limit hit while lupa converts aborts or hangs
-- the process): each host callback lifts it as it starts, and it comes back here, right after the reply is
-- converted; the next allocation over it fails as usual.
local function with_host(...)
  local r = t_pack(host(...))
  memory_on()
  return r
end

local function at(root, path, depth)
  for i = 1, depth do root = root[path[i]] end
  return root
end

-- Beside a value that has any, the host sends the paths of its empty arrays and of the nulls in its arrays.
local function finish_value(value, fixes)
  if fixes then
    for _, path in ipairs(fixes.arrays) do ARRAYS[at(value, path, #path)] = true end
    for _, path in ipairs(fixes.nulls) do at(value, path, #path - 1)[path[#path]] = NULL end
  end
  return value
end

-- One result from the host: {"ok", value[, {arrays=, nulls=}]} | {"error", kind, message} | {"trip", kind, message}
local function deliver(r)
  local status = r[1]
  if status == "ok" then return finish_value(r[2], r[3]) end
  if status == "trip" then trip(r[2], r[3]) end
  raise_at_caller(r[2], r[3])
end

local NAMESPACES = real_setmetatable({}, {__mode = "k"})

-- The usual argument, a table of named strings, numbers and booleans, goes to the host as it is (no JSON
-- round trip); anything else goes as JSON text, so the host can word what is wrong with it.
local function is_flat(t)
  for k, v in next, t do
    if type(k) ~= "string" or not utf8_len(k) then return false end
    local vt = type(v)
    if vt == "string" then
      if not utf8_len(v) then return false end
    elseif vt ~= "number" and vt ~= "boolean" then
      return false
    end
  end
  return true
end

local function call_function(id, ...)
  if tripped then real_error(tripped.message, 0) end
  local nargs = select("#", ...)
  local first = ...
  if nargs > 0 and NAMESPACES[first] ~= nil then
    return deliver(with_host("call", id, nargs, nil, true, nil))
  end
  if nargs == 1 and type(first) == "table" and is_flat(first) then
    return deliver(with_host("call", id, 1, first, false, nil))
  end
  local args, err = nil, nil
  if nargs > 0 then args, err = to_json(first, false, true) end
  return deliver(with_host("call", id, nargs, args, false, err))
end

local function namespace(path)
  local ns = {}
  NAMESPACES[ns] = path
  return real_setmetatable(ns, {
    __index = function(t, key)
      local r = with_host("resolve", path, key)
      local value
      if r[1] == "namespace" then value = namespace(r[2])
      elseif r[1] == "function" then
        local id = r[2]
        value = function(...) return call_function(id, ...) end
      else raise_at_caller(r[2], r[3]) end
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
S.ipairs = ipairs
S.next = next
S.pairs = pairs
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
  abs = math.abs, ceil = math.ceil, cos = math.cos, deg = math.deg, exp = math.exp, floor = math.floor, fmod =
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

S.string.rep = function(s, n, sep)
  local size = #tostring(s) * (tonumber(n) or 0) + (sep and #tostring(sep) or 0) * ((tonumber(n) or 1) - 1)
  if size > MAX_MEMORY then
    trip("memory", s_format("string.rep would build %.0f bytes, over the memory limit of %d bytes", size, MAX_MEMORY))
  end
  return s_rep(s, n, sep)
end
-- Strings' methods are the sandbox's string table, so ("x"):rep(n) is capped too.
real_getmetatable("").__index = S.string

-- Argument errors as the standard functions word them: the name the caller used, the caller's position.
-- `level` is the wrapper's stack level as seen from here (2 when the wrapper calls argerror itself).
local function argerror(index, fallback, message, level)
  level = level or 2
  local info = debug_getinfo(level, "n")
  real_error(s_format("bad argument #%d to '%s' (%s)", index, info and info.name or fallback, message), level + 1)
end

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
    return handler(e)
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
  local co = ...
  check_arg(select("#", ...), 1, co, "thread", "coroutine.close")
  local status = co_status(co)
  if status == "running" or status == "normal" then
    real_error("cannot close a " .. status .. " coroutine", 2)
  end
  return after_catch(co_close(co))
end

-- Like the standard wrap: errors propagate with the caller's position (the tail call keeps the frame).
local function wrap_result(co, ok, ...)
  if tripped then real_error(tripped.message, 0) end
  if ok then return ... end
  local e = ...
  if e == MEMERR then trip_memory() end
  if co_status(co) == "dead" then co_close(co) end
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

S.load = function(...)
  local chunk, name, mode, env = ...
  if select("#", ...) < 4 then env = S end
  if mode ~= nil and type(mode) == "string" and not s_find(mode, "t", 1, true) then
    return nil, "attempt to load a text chunk (mode is '" .. mode .. "')"
  end
  return real_load(chunk, name, "t", env)
end

S.setmetatable = function(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    real_error("setmetatable: __gc metamethods are not allowed in the sandbox", 2)
  end
  return real_setmetatable(t, mt)
end

S.getmetatable = function(...)
  if select("#", ...) == 0 then argerror(1, "getmetatable", "value expected") end
  local v = ...
  if type(v) ~= "table" then return nil end
  return real_getmetatable(v)
end

S.print = function(...)
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
    if room > 0 then emit(s_sub(line, 1, room)) end
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
    return deliver(with_host("json_decode", valid_utf8(text)))
  end,
  array = function(t)
    if t == nil then t = {} end
    if type(t) ~= "table" then real_error("json.array: expected a table, got " .. type(t), 2) end
    ARRAYS[t] = true
    return t
  end,
}

for _, name in ipairs({"lua_read_doc", "lua_list_docs", "lua_search_docs"}) do
  S[name] = function(...)
    local args = t_pack(...)
    for i = 1, args.n do
      if args[i] ~= nil and type(args[i]) ~= "string" then
        raise_at_caller("runtime", name .. ": expected a string, got " .. type(args[i]))
      end
    end
    return deliver(with_host(name, t_unpack(args, 1, args.n)))
  end
end

S.app = namespace("app")

-- Running a script ----------------------------------------------------------------------------------------

local function describe(e)
  if type(e) == "string" then return e end
  if type(e) == "table" and has_tostring(e) then
    local ok, text = real_pcall(tostring, e)
    if ok and type(text) == "string" then return text end
  end
  return "(error object is a " .. type(e) .. " value)"
end

local function finish_error(e)
  debug_sethook()
  if tripped then return "limit", tripped.kind, tripped.message end
  if e == MEMERR then
    return "limit", "memory", s_format("memory limit of %d bytes exceeded", MAX_MEMORY)
  end
  local message = valid_utf8(describe(e))
  return "error", ERROR_KINDS[e] or "runtime", message
end

local function encode_results(results)
  if results.n == 0 then return "null" end
  if results.n == 1 then return to_json(results[1], false) end
  local list = {}
  for i = 1, results.n do list[i] = results[i] == nil and NULL or results[i] end
  ARRAYS[list] = true
  return to_json(list, false)
end

return function(code)
  local chunk, err = real_load(code, "=script", "t", S)
  if not chunk then return "error", "syntax", valid_utf8(err) end
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
