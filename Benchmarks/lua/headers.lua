-- wrk script: add request headers read from the file named by $WRK_HEADERS_FILE.
-- One "Name: value" per line; blank lines and lines starting with '#' are ignored.
-- Benchmarks/run sets WRK_HEADERS_FILE per target (TARGET_HEADERS[name]), e.g. to a file
-- holding "Authorization: Bearer <RS256 token>" for an authenticated workload.
-- The top level runs in every wrk thread's Lua state before the request is built,
-- so setting wrk.headers here applies to every request.
local path = os.getenv("WRK_HEADERS_FILE")
if path and path ~= "" then
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    if not line:match("^%s*$") and not line:match("^%s*#") then
      local name, value = line:match("^%s*([^:%s]+)%s*:%s*(.-)%s*$")
      assert(name, "bad header line in " .. path .. ": " .. line)
      wrk.headers[name] = value
    end
  end
  f:close()
end
