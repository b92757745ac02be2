-- The kernel's wrappers of the standard functions a script rarely calls, and of json and the doc functions
-- (see _kernel.lua: the environment holds a stub for each, which loads this part the first time one is
-- called). `K` is what the kernel shares with its parts. Every function here runs below its stub, so its
-- errors find the script's frame with `outside` instead of counting levels.

local K = ...
local outside, argerror, trip, trip_memory, charge, hook = K.outside, K.argerror, K.trip, K.trip_memory, K.charge, K.hook
local after_catch, clean, tripped, over_memory = K.after_catch, K.clean, K.tripped, K.over_memory
local to_json, deliver, with_host, raise_at_caller, valid_utf8 = K.to_json, K.deliver, K.with_host, K.raise_at_caller, K.valid_utf8
local HOST, ARRAYS, MEMERR, STEP, S = K.HOST, K.ARRAYS, K.MEMERR, K.STEP, K.S
local type, select, tostring, tonumber, rawget = K.type, K.select, K.tostring, K.tonumber, K.rawget
local real_error, real_pcall, real_xpcall, real_load = K.real_error, K.real_pcall, K.real_xpcall, K.real_load
local real_setmetatable, real_getmetatable, raw_getmetatable = K.real_setmetatable, K.real_getmetatable, K.raw_getmetatable
local debug_sethook, math_type, math_tointeger = K.debug_sethook, K.math_type, K.math_tointeger
local co_create, co_resume, co_close, co_status = K.co_create, K.co_resume, K.co_close, K.co_status
local s_rep, s_format, s_match, s_find, os_date, os_time = K.s_rep, K.s_format, K.s_match, K.s_find, K.os_date, K.os_time

local part = {}

local COROUTINE_COST = 1000    -- charged per coroutine created or resumed, so short ones cannot hide
-- Standard Lua refuses to build a string longer than this, with a catchable "resulting string too large".
local MAX_STRING = 0x7fffffff

-- An error raised at the script's position, as a standard function raises it.
local function raise_outside(message)
  real_error(message, (outside()))
end

local function check_arg(n, index, v, expected, fallback)
  if type(v) ~= expected then
    argerror(index, fallback, expected .. " expected, got " .. (n < index and "no value" or type(v)))
  end
end

-- The error of a standard function that a wrapper called through `real_pcall`, raised as if the script
-- had called the function itself: named as the caller named it, at the caller's position (the kernel's
-- own frames have neither: its debug info is stripped, so a direct call would say '?' and no line).
local function reraise_standard(e)
  if e == MEMERR then trip_memory() end
  local index, rest = s_match(type(e) == "string" and e or "", "^bad argument #(%d+) to '[^']*'(.*)$")
  local level, name, namewhat = outside()
  if index and name then
    index = tonumber(index)
    if namewhat == "method" then index = index - 1 end
    if index == 0 then
      e = s_format("calling '%s' on bad self%s", name, rest)
    else
      e = s_format("bad argument #%d to '%s'%s", index, name, rest)
    end
  end
  real_error(e, level)
end

local function rep_text(v)
  if type(v) == "string" then return v end
  if type(v) == "number" then return tostring(v) end
end

-- string.rep builds its result in one C call, before any hook runs: a result over the memory limit ends
-- the run before it is built, and one standard Lua refuses is refused by it, catchably, as there.
part["string.rep"] = function(...)
  local s, n, sep = ...
  local count = math_type(n) == "integer" and n or math_tointeger(tonumber(n) or 0.5)
  local text, separator = rep_text(s), sep == nil and "" or rep_text(sep)
  if count and text and separator and count > 0 and #text + #separator <= MAX_STRING // count then
    local size = #text * count + #separator * (count - 1)
    local max_memory = K.max_memory()
    if size > max_memory then
      trip("memory", s_format("string.rep would build %d bytes, over the memory limit of %d bytes", size, max_memory))
    end
    return s_rep(...)
  end
  local ok, result = real_pcall(s_rep, ...)
  if ok then return result end
  reraise_standard(result)
end

-- The run's randomness and clock are the host's per-run seed and start time, so that a run resumed after an
-- approval draws the same numbers and reads the same time as the run that paused (docs/writes.md).
part["os.date"] = function(...)
  local ok, result
  if select("#", ...) < 2 or select(2, ...) == nil then
    local format = ...
    ok, result = real_pcall(os_date, format == nil and "%c" or format, K.start())
  else
    ok, result = real_pcall(os_date, ...)
  end
  if ok then return result end
  reraise_standard(result)
end

part["os.time"] = function(...)
  if (...) == nil then return K.start() end
  local ok, result = real_pcall(os_time, ...)
  if ok then return result end
  reraise_standard(result)
end

part.xpcall = function(...)
  local f, handler = ...
  check_arg(select("#", ...), 2, handler, "function", "xpcall")
  -- A handler runs with hooks off after a hook's error, so it is skipped once a limit is reached.
  local function guarded(e)
    if tripped() or e == MEMERR then return e end
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

part["coroutine.create"] = function(...)
  check_arg(select("#", ...), 1, ..., "function", "coroutine.create")
  return create_coroutine(...)
end

part["coroutine.resume"] = function(...)
  check_arg(select("#", ...), 1, ..., "thread", "coroutine.resume")
  charge(COROUTINE_COST)
  return after_catch(co_resume(...))
end

part["coroutine.close"] = function(...)
  -- Once a limit is reached, nothing is closed: a coroutine the hook stopped has no hook left (Lua turns
  -- it off while a hook runs, and an error out of the hook never turns it back on), so its pending
  -- `<close>` handlers would run unchecked.
  local limit = tripped()
  if limit then real_error(limit.message, 0) end
  local co = ...
  check_arg(select("#", ...), 1, co, "thread", "coroutine.close")
  local status = co_status(co)
  if status == "running" or status == "normal" then
    raise_outside("cannot close a " .. status .. " coroutine")
  end
  return after_catch(co_close(co))
end

-- Like the standard wrap: errors propagate with the caller's position (the tail call keeps the frame).
-- As there, a dead coroutine is closed first, and an error raised by a `<close>` handler replaces its own.
local function wrap_result(co, ok, ...)
  local limit = tripped()
  if limit then real_error(limit.message, 0) end
  if ok then return ... end
  local e = (...)
  if e ~= MEMERR and co_status(co) == "dead" then
    local closed, close_error = co_close(co)
    limit = tripped()
    if limit then real_error(limit.message, 0) end
    if not closed then e = close_error end
  end
  e = clean(e)
  if e == MEMERR then trip_memory() end
  if type(e) == "string" then real_error(e, 2) end
  real_error(e, 0)
end

part["coroutine.wrap"] = function(...)
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
  local limit = tripped()
  if limit then real_error(limit.message, 0) end
  if fn == nil and (message == MEMERR or over_memory()) then trip_memory() end
  return fn, clean(message)
end

part.load = function(...)
  local chunk, name, mode, env = ...
  if select("#", ...) < 4 then env = S end
  if mode ~= nil and type(mode) == "string" and not s_find(mode, "t", 1, true) then
    return nil, "attempt to load a text chunk (mode is '" .. mode .. "')"
  end
  if type(chunk) == "function" then
    local reader = chunk
    chunk = function()
      local piece = reader()
      local limit = tripped()
      if limit then real_error(limit.message, 0) end
      return piece
    end
  end
  local ok, fn, message = real_pcall(real_load, chunk, name, "t", env)
  if not ok then reraise_standard(fn) end
  return after_load(fn, message)
end

part.setmetatable = function(...)
  local t, mt = ...
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    raise_outside("setmetatable: __gc metamethods are not allowed in the sandbox")
  end
  if type(t) == "table" and (mt == nil or type(mt) == "table") and select("#", ...) >= 2 then
    local current = raw_getmetatable(t)
    if current == nil or rawget(current, "__metatable") == nil then return real_setmetatable(t, mt) end
  end
  local ok, result = real_pcall(real_setmetatable, ...)
  if ok then return result end
  reraise_standard(result)
end

part.getmetatable = function(...)
  if select("#", ...) == 0 then argerror(1, "getmetatable", "value expected") end
  local v = ...
  if type(v) ~= "table" then return nil end
  return real_getmetatable(v)
end

part["json.encode"] = function(v)
  local text, err = to_json(v, false)
  if not text then raise_outside("json.encode: " .. err) end
  return text
end

part["json.decode"] = function(text)
  if type(text) ~= "string" then
    raise_outside("json.decode: expected a string, got " .. type(text))
  end
  return deliver(with_host(HOST, "json_decode", valid_utf8(text)))
end

part["json.array"] = function(t)
  if t == nil then t = {} end
  if type(t) ~= "table" then raise_outside("json.array: expected a table, got " .. type(t)) end
  ARRAYS[t] = true
  return t
end

-- The doc functions take one optional string; the host is handed it as valid UTF-8, and nothing else.
for _, name in K.ipairs({"lua_read_doc", "lua_list_docs", "lua_search_docs"}) do
  part[name] = function(...)
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

return part
