-- wrk script for bench/run: send a different bearer token with each request,
-- cycling through the file named by $TOKFILE (one token per line).
-- Every wrk thread has its own Lua state; each starts at its own random
-- offset so the threads do not walk the list in lockstep.

local thread_no = 0

function setup(thread)
  thread_no = thread_no + 1
  thread:set("thread_no", thread_no)
end

function init(args)
  local path = os.getenv("TOKFILE")
  if not path then error("TOKFILE is not set") end
  tokens = {}
  for line in io.lines(path) do
    if #line > 0 then tokens[#tokens + 1] = "Bearer " .. line end
  end
  if #tokens == 0 then error("no tokens in " .. path) end
  math.randomseed(os.time() * 1000 + (thread_no or 0) * 7919)
  for _ = 1, 10 do math.random() end
  pos = math.random(#tokens)
end

function request()
  pos = pos % #tokens + 1
  return wrk.format("GET", nil, { ["Authorization"] = tokens[pos] })
end
