-- SPDX-License-Identifier: Apache-2.0
-- wrk script for bench/run: send a different bearer token with each request,
-- from the file named by $TOKFILE (one token per line).
--
-- Default: cycle through the list forever. Every wrk thread has its own Lua
-- state; each starts at its own random offset so the threads do not walk the
-- list in lockstep.
--
-- ONCE=1: send every token exactly once (a "pass" over the pool): thread k of
-- n takes tokens k, k+n, k+2n, ... (n = $ONCE_THREADS, wrk's -t). A thread
-- that has sent its share stops itself and appends a byte to $ONCE_DONE (a
-- file bench/run names afresh for each pass); the last one to finish sends
-- SIGINT to wrk, which then ends the run (instead of waiting for -d) and
-- prints the usual summary. done() adds one line
--   ONCE pool=<tokens> fresh=<tokens sent> exhausted=<0|1> duration_us=<run>
-- so bench/run can tell how many new tokens were used and whether the whole
-- pool was sent (exhausted=0: -d ended the pass first). On a module that has
-- never seen the pool this pass is the cold measurement: every request
-- verifies a signature; afterwards every token of the pool is cached.
-- (wrk builds one request of thread 1 at start-up to check the script and
-- never sends it: that token stays unsent, and fresh counts it.)

local ffi = require("ffi")
ffi.cdef [[
int kill(int pid, int sig);
int getpid(void);
]]
local SIGINT = 2

-- setup() runs in wrk's main Lua state and numbers the threads; the number
-- reaches each thread's own state as the global `tid` (a local of the main
-- state would read 0 in every thread: they all started the same walk)
local count = 0
local threads = {}
local once = os.getenv("ONCE") == "1"

function setup(thread)
  count = count + 1
  thread:set("tid", count)
  threads[#threads + 1] = thread
end

function init(args)
  local path = os.getenv("TOKFILE")
  if not path then error("TOKFILE is not set") end
  tokens = {}
  for line in io.lines(path) do
    if #line > 0 then tokens[#tokens + 1] = "Bearer " .. line end
  end
  if #tokens == 0 then error("no tokens in " .. path) end
  fresh = 0
  exhausted = 0
  if once then
    -- tid is 1-based; wrk's thread count is not visible here, so the
    -- stride comes from the environment (bench/run passes THREADS)
    stride = tonumber(os.getenv("ONCE_THREADS") or "1")
    pos = tid
  else
    math.randomseed(os.time() * 1000 + tid * 7919)
    for _ = 1, 10 do math.random() end
    pos = math.random(#tokens)
  end
end

function request()
  if not once then
    pos = pos % #tokens + 1
    return wrk.format("GET", nil, { ["Authorization"] = tokens[pos] })
  end
  if pos <= #tokens then
    local t = tokens[pos]
    pos = pos + stride
    fresh = fresh + 1
    return wrk.format("GET", nil, { ["Authorization"] = t })
  end
  if exhausted == 0 then
    -- out of new tokens: stop this thread rather than repeat tokens (a
    -- repeated token would be a cache hit, not a cold verification)
    exhausted = 1
    wrk.thread:stop()
    local done_file = os.getenv("ONCE_DONE")
    local f = done_file and io.open(done_file, "a")
    if f then
      f:write("x")
      f:close()
      f = io.open(done_file, "r")
      local finished = f and #f:read("*a") or 0
      if f then f:close() end
      if finished >= stride then ffi.C.kill(ffi.C.getpid(), SIGINT) end
    else
      ffi.C.kill(ffi.C.getpid(), SIGINT)
    end
  end
  -- the few requests wrk still asks for before it stops repeat this
  -- thread's last token; they are not counted as fresh
  return wrk.format("GET", nil, { ["Authorization"] = tokens[math.min(#tokens, math.max(1, pos - stride))] })
end

function done(summary, latency, requests)
  if not once then return end
  local fresh_total, all_exhausted = 0, 1
  for _, t in ipairs(threads) do
    fresh_total = fresh_total + (t:get("fresh") or 0)
    if (t:get("exhausted") or 0) ~= 1 then all_exhausted = 0 end
  end
  local n = 0
  for line in io.lines(os.getenv("TOKFILE")) do
    if #line > 0 then n = n + 1 end
  end
  io.write(string.format("ONCE pool=%d fresh=%d exhausted=%d duration_us=%d\n",
    n, fresh_total, all_exhausted, summary.duration))
end
