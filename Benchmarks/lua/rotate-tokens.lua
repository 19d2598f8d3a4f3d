-- wrk script: the "rotated tokens" workload. Every request carries the next token of the file
-- named by $WRK_TOKENS_FILE (one JWT per line, e.g. 10,000 distinct RS256 tokens made by
-- Benchmarks/tools/mint-tokens.py) as "Authorization: Bearer <token>", round-robin.
--
-- Cheap on purpose (wrk shares its core with the backend): each thread reads the file once in
-- init() and pre-formats every request with wrk.format(); request() only returns the next
-- prebuilt string. Threads start at different offsets so they do not send the same token
-- at the same moment. Extra headers from $WRK_HEADERS_FILE (same format as headers.lua) are
-- added to every request, except Authorization, which the token replaces.

local thread_count = 0
function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

local function read_headers(path)
  local h = {}
  if not path or path == "" then return h end
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    if not line:match("^%s*$") and not line:match("^%s*#") then
      local name, value = line:match("^%s*([^:%s]+)%s*:%s*(.-)%s*$")
      assert(name, "bad header line in " .. path .. ": " .. line)
      if name:lower() ~= "authorization" then h[name] = value end
    end
  end
  f:close()
  return h
end

local requests, count, i = {}, 0, 0

function init(args)
  local path = os.getenv("WRK_TOKENS_FILE")
  assert(path and path ~= "", "rotate-tokens.lua: WRK_TOKENS_FILE is not set")
  local extra = read_headers(os.getenv("WRK_HEADERS_FILE"))
  local f = assert(io.open(path, "r"))
  for token in f:lines() do
    token = token:match("^%s*(.-)%s*$")
    if token ~= "" then
      local headers = {}
      for k, v in pairs(extra) do headers[k] = v end
      headers["Authorization"] = "Bearer " .. token
      count = count + 1
      requests[count] = wrk.format(nil, nil, headers)
    end
  end
  f:close()
  assert(count > 0, "rotate-tokens.lua: no tokens in " .. path)
  -- spread the threads' starting points over the file
  i = ((thread_index or 0) * 7919) % count
end

function request()
  i = i + 1
  if i > count then i = 1 end
  return requests[i]
end
