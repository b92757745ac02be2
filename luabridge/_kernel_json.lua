-- The kernel's JSON encoder for tables (see _kernel.lua, which loads it the first time a table is encoded
-- and encodes every other value itself). `K` is what the kernel shares with its parts.

local K = ...
local ARRAYS, ERROR_FIELDS, is_null, copy_fields = K.ARRAYS, K.ERROR_FIELDS, K.is_null, K.copy_fields
local scalar_json, number_text, quote = K.scalar_json, K.number_text, K.quote
local next, rawget, rawlen, type, ipairs = K.next, K.rawget, K.rawlen, K.type, K.ipairs
local math_type, t_sort, t_concat = K.math_type, K.t_sort, K.t_concat

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
  if vt == "table" then
    if is_null(v) then out[#out + 1] = "null"; return end
    local fields = ERROR_FIELDS[v]
    if fields then v = copy_fields(fields) end
    return encode_table(v, out, depth, seen, loose, tag)
  end
  local text, err = scalar_json(v, vt, loose, tag)
  if not text then return err end
  out[#out + 1] = text
end

-- A table as JSON text, or nil and why it cannot be.
return function(t, loose, tag)
  local out = {}
  local err = encode(t, out, 0, {}, loose, tag)
  if err then return nil, err end
  return t_concat(out)
end
