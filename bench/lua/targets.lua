-- Shared by every bench script: which server each wrk thread talks to.
-- BENCH_PORTS (environment, comma-separated; empty: the URL's port) lists ports of the
-- URL's host; thread i connects to port i mod n, so one wrk spreads its connections
-- evenly over several API processes and reports one latency histogram for all.
-- Each thread also gets its own `thread_index`, so their random choices differ.
local target_ports = {}
for port in string.gmatch(os.getenv("BENCH_PORTS") or "", "%d+") do
   target_ports[#target_ports + 1] = port
end
local threads_set_up = 0

function setup(thread)
   if #target_ports > 0 then
      local port = target_ports[threads_set_up % #target_ports + 1]
      local addrs = wrk.lookup(wrk.host, port)
      if addrs == nil or addrs[1] == nil then
         error("cannot resolve " .. wrk.host .. ":" .. port)
      end
      thread.addr = addrs[1]
   end
   thread:set("thread_index", threads_set_up)
   threads_set_up = threads_set_up + 1
end
