-- The sandbox kernel: trusted Lua that runs once in each fresh runtime, in the real globals.
--
-- It builds the script's environment from an allow-list, installs the limits (an instruction hook that
-- also checks the wall clock, sticky once tripped and re-raised by every wrapper that could catch it),
-- and turns values into JSON text on the way out. Everything it needs from the real globals is captured
-- in locals first: the script may change its own `string` or `table` copies without touching the kernel.
-- The host hands in the few Python callables the kernel needs, then its parts (what few runs use, loaded
-- when a run first needs it: see Parts below); a run's settings come with `run`.
--
-- No Python object ever reaches the script, by construction rather than by care at each call site:
-- * every Python callable is called here, through `real_pcall`, and only its checked reply (strings,
--   numbers, booleans, nil and tables the host converter built from JSON) goes on; whatever lupa or the
--   host raises, an exception object included, is dropped and replaced by a plain string;
-- * every catcher the script has (pcall, xpcall and its handler, coroutine resume, wrap and close) turns
--   an error value of type userdata into a plain string;
-- * the metatable that lupa shares between all wrapped Python objects is neutered below: indexing,
--   calling or printing one fails with a plain message, so an object that slipped through is inert.

local NOW, EMIT, MEMORY_ON, HOST, CALL, JSON_PART, ERRORS_PART, LIBRARY_PART = ...

local debug_sethook, debug_getinfo, raw_getmetatable = debug.sethook, debug.getinfo, debug.getmetatable
local gc_count = collectgarbage
local real_pcall, real_xpcall, real_error, real_load = pcall, xpcall, error, load
local real_setmetatable, real_getmetatable = setmetatable, getmetatable
local rawget, rawset, rawequal, rawlen, next, type, select = rawget, rawset, rawequal, rawlen, next, type, select
local tostring, tonumber, ipairs, pairs = tostring, tonumber, ipairs, pairs
local math_tointeger, math_randomseed = math.tointeger, math.randomseed
local co_create, co_resume, co_close = coroutine.create, coroutine.resume, coroutine.close
local co_status = coroutine.status
local os_date, os_time = os.date, os.time
local s_rep, s_format, s_gsub, s_byte, s_find = string.rep, string.format, string.gsub, string.byte, string.find
local s_sub, s_match = string.sub, string.match
local utf8_len = utf8.len
local t_concat, t_sort, t_pack, t_unpack = table.concat, table.sort, table.pack, table.unpack
local math_type, math_huge = math.type, math.huge
-- The standard tables the script's environment is made of (see The environment).
local real_assert, real_version = assert, _VERSION
local MATH, TABLE, UTF8, STRING, COROUTINE = math, table, utf8, string, coroutine
local os_clock, os_difftime = os.clock, os.difftime
-- From here on the kernel reads no global: a global name is an error when it runs, not a script's variable.
local _ENV = nil

-- `host(operation, ...)` is the one door to the host for everything that returns data, and `call` its
-- shortcut for the usual integration call (each Python object handed to Lua costs start-up time, so there
-- are few).
-- The run's limits, set by `run`: the kernel is loaded before its script (and its limits) arrive.
local DEADLINE, TIMEOUT, MAX_RESULT, MAX_INSTRUCTIONS, MAX_MEMORY, MAX_OUTPUT
local START                     -- the run's clock (Unix seconds), with its seed
local MEMERR = "not enough memory"
local HOST_ERROR = "internal error in the host (a bug in the host, logged there)"
local MAX_MESSAGE = 8192        -- bytes of an error message the host is handed; the rest is cut
local SOFT_MEMORY = math_huge   -- Lua's own count (KiB) past which the run trips; set by `run`

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

-- Over the memory limit, by Lua's own count.
local function over_memory()
  return gc_count("count") > SOFT_MEMORY
end

-- After anything that can catch an error: a tripped limit or a memory error keeps propagating.
local function after_catch(ok, ...)
  if tripped then real_error(tripped.message, 0) end
  if ok then return ok, ... end
  local e = ...
  if e == MEMERR or over_memory() then trip_memory() end
  return false, clean(e)
end

-- Host calls --------------------------------------------------------------------------------------------

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
  if not (n <= 5 and ok and status == "ok" and FREE_VALUE[type(a)] and (b == nil or FREE_VALUE[type(b)])
          and (c == nil or FREE_VALUE[type(c)])) then
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

-- Parts ---------------------------------------------------------------------------------------------------

-- What few runs use lives in parts, each its own chunk loaded the first time a run needs it: a run pays
-- for the kernel it uses. A part is a function of K, what the kernel shares with its parts (filled in at
-- the end), and sees nothing else: it runs in an empty environment. It is loaded under the script's
-- limits; like the kernel, it is not the script's memory: the limit moves up, on both sides, by what it took.
local K   -- filled in at the end
local PART_CODE = {json = JSON_PART, errors = ERRORS_PART, library = LIBRARY_PART}
local PARTS = {}

local function part(name)
  local loaded = PARTS[name]
  if loaded then return loaded end
  local before = gc_count("count")
  local chunk, message = real_load(PART_CODE[name], "=kernel", "b", {})
  if not chunk then
    if message == MEMERR or over_memory() then trip_memory() end
    real_error("internal error: a part of the sandbox could not be loaded", 0)
  end
  loaded = chunk(K)
  PARTS[name] = loaded
  local grown = gc_count("count") - before  -- KiB; less than the part took if a collection ran meanwhile
  if grown > 0 then
    SOFT_MEMORY = SOFT_MEMORY + grown
    with_host(HOST, "part_loaded", grown * 1024)
  end
  return loaded
end

-- Error kinds of the messages the bridge raised, so the host can report a script's uncaught error
-- with the right type, even when the script re-raises the message as a string.
local ERROR_KINDS = {}

-- A bridge error's facts, keyed by the error value (see _kernel_errors.lua).
local ERROR_FIELDS = real_setmetatable({}, {__mode = "k"})

local function copy_fields(fields)
  local copy = {}
  for k, v in next, fields do copy[k] = v end
  return copy
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
  real_error(part("errors").error_value(kind, message, ...), 0)
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

-- The JSON text of a value that is not a table, or nil and why JSON cannot hold it. `loose` and `tag` are
-- as for tables (see _kernel_json.lua).
local function scalar_json(v, vt, loose, tag)
  if vt == "string" then return quote(v) end
  if vt == "number" then
    local text = number_text(v)
    if text then return text end
    if loose then return tostring(v) end
    return nil, "cannot encode " .. tostring(v) .. " as a JSON number"
  end
  if vt == "boolean" then return v and "true" or "false" end
  if vt == "nil" then return "null" end
  if loose then return "<" .. vt .. ">" end
  if tag then return '{"\\u0000lua":"' .. vt .. '"}' end
  return nil, "cannot encode a " .. vt .. " value"
end

local function to_json(v, loose, tag)
  local vt = type(v)
  if vt == "table" then return part("json")(v, loose, tag) end
  return scalar_json(v, vt, loose, tag)
end

-- Host calls, continued ---------------------------------------------------------------------------------

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
    if nargs == 1 and type(first) == "table" and NAMESPACES[first] == nil then
      local k, v = next(first)
      if k == nil then return deliver(with_host(CALL, id)) end
      if next(first, k) == nil and flat_pair(k, v) then  -- the commonest: one named argument
        return deliver(with_host(CALL, id, k, v))
      end
      local pairs = flat_pairs(first)
      if pairs then return deliver(with_host(CALL, id, t_unpack(pairs, 1, pairs.n))) end
    elseif nargs > 0 and NAMESPACES[first] ~= nil then  -- called with a colon
      return deliver(with_host(HOST, "call", id, nargs, nil, true, nil, room()))
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

-- Table constructors rather than a loop over names: this runs at the start of every run. The script gets
-- math, table and utf8 themselves (its changes to them are its own: the kernel's copies are locals). string
-- and coroutine are copies: they lack string.dump, and their wrapped functions (below) must not replace the
-- originals, by which Lua names a standard function that fails when called from C (package.loaded).
S.assert = real_assert
S.error = real_error
S.next = next
S.rawequal = rawequal
S.rawget = rawget
S.rawlen = rawlen
S.rawset = rawset
S.select = select
S.tonumber = tonumber
S.tostring = tostring
S.type = type
S._VERSION = real_version
S._G = S
S.math = MATH
S.table = TABLE
S.utf8 = UTF8
S.os = {clock = os_clock, difftime = os_difftime}
S.string = {
  byte = STRING.byte, char = STRING.char, find = s_find, format = s_format, gmatch = STRING.gmatch, gsub = s_gsub,
  len = STRING.len, lower = STRING.lower, match = s_match, pack = STRING.pack, packsize = STRING.packsize,
  reverse = STRING.reverse, sub = s_sub, unpack = STRING.unpack, upper = STRING.upper,
}
S.coroutine = {
  isyieldable = COROUTINE.isyieldable, running = COROUTINE.running, status = co_status, yield = COROUTINE.yield,
}

local STRING_LIB = S.string   -- strings' methods, which an error value offers as its own too


-- Argument errors as the standard functions word them: the name the caller used, the caller's position.
-- Both are found on the stack, above the kernel's own frames, so that a wrapper can be reached through a
-- stub or call a helper: `outside` returns the level of the first frame outside the kernel, counted from
-- its caller, and the name and kind of name that frame called the kernel by.
-- The kernel's frames are the Lua frames without line numbers: its bytecode is stripped, and a script can
-- only load text.
local function outside()
  local level = 3                      -- 1: outside, 2: its caller, a kernel function
  local info = debug_getinfo(level, "Sl")
  while info and info.what ~= "C" and info.currentline < 0 do
    level = level + 1
    info = debug_getinfo(level, "Sl")
  end
  local called = debug_getinfo(level - 1, "n")
  return level - 1, called and called.name, called and called.namewhat
end

local function argerror(index, fallback, message)
  local level, name = outside()
  real_error(s_format("bad argument #%d to '%s' (%s)", index, name or fallback, message), level)
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

S.pcall = function(...)
  if select("#", ...) == 0 then argerror(1, "pcall", "value expected") end
  return after_catch(real_pcall(...))
end


-- The wrappers of the standard functions a script rarely calls (and of json and the doc functions) are
-- in the library part: each is a stub here. A stub calls its wrapper, not as a tail call, so that the
-- stub's frame stays between the script and the wrapper, with the name the script called it by.
local function pass(...) return ... end
local function library(name)
  return function(...) return pass(part("library")[name](...)) end
end
S.string.rep = library("string.rep")
-- Strings' methods are the sandbox's string table, so ("x"):rep(n) is capped too.
real_getmetatable("").__index = S.string
S.os.date = library("os.date")
S.os.time = library("os.time")
S.xpcall = library("xpcall")
S.coroutine.create = library("coroutine.create")
S.coroutine.resume = library("coroutine.resume")
S.coroutine.close = library("coroutine.close")
S.coroutine.wrap = library("coroutine.wrap")
S.load = library("load")
S.setmetatable = library("setmetatable")
S.getmetatable = library("getmetatable")
S.json = {null = NULL, encode = library("json.encode"), decode = library("json.decode"), array = library("json.array")}
S.lua_read_doc = library("lua_read_doc")
S.lua_list_docs = library("lua_list_docs")
S.lua_search_docs = library("lua_search_docs")

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


S.app = namespace("app")

-- Running a script ----------------------------------------------------------------------------------------

-- An uncaught error as text: a bridge error's message, a string or number as it is, a table as its
-- __tostring or else its JSON (see _kernel_errors.lua).
local function describe(e)
  if type(e) == "string" then return e end
  if type(e) == "number" then return tostring(e) end
  local fields = ERROR_FIELDS[e]
  if fields then return fields.message end
  if type(e) == "table" then
    local text = part("errors").describe_table(e)
    if text then return text end
  end
  return "(error object is a " .. type(e) .. " value)"
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
  local advice = type(e) == "string" and s_find(text, "a nil value (", 1, true) and part("errors").hint(text)
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
  math_randomseed(seed)
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

-- What the parts see of the kernel: its own functions and tables, the standard functions as it captured
-- them, and the run's mutable state through functions. One constructor, sized once: this runs every run.
K = {
  S = S, HOST = HOST, STRING_LIB = STRING_LIB, ARRAYS = ARRAYS, ERROR_FIELDS = ERROR_FIELDS, MEMERR = MEMERR,
  STEP = STEP,
  tripped = function() return tripped end, start = function() return START end,
  max_memory = function() return MAX_MEMORY end,
  over_memory = over_memory, trip = trip, trip_memory = trip_memory, charge = charge, hook = hook,
  after_catch = after_catch, clean = clean, outside = outside, argerror = argerror,
  raise_at_caller = raise_at_caller, with_host = with_host, deliver = deliver, to_json = to_json,
  scalar_json = scalar_json, number_text = number_text, quote = quote, is_null = is_null,
  copy_fields = copy_fields, has_tostring = has_tostring, valid_utf8 = valid_utf8,
  next = next, rawget = rawget, rawlen = rawlen, type = type, select = select, ipairs = ipairs,
  tostring = tostring, tonumber = tonumber, real_error = real_error, real_pcall = real_pcall,
  real_xpcall = real_xpcall, real_load = real_load, real_setmetatable = real_setmetatable,
  real_getmetatable = real_getmetatable, raw_getmetatable = raw_getmetatable, debug_sethook = debug_sethook,
  math_type = math_type, math_tointeger = math_tointeger, co_create = co_create, co_resume = co_resume,
  co_close = co_close, co_status = co_status, s_rep = s_rep, s_format = s_format, s_match = s_match,
  s_find = s_find, s_sub = s_sub, t_sort = t_sort, t_concat = t_concat, os_date = os_date, os_time = os_time,
}

return compile, run, debug_sethook, limit_reached
