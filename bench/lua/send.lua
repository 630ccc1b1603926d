-- POST /bat/messagelist with pre-built bodies, taken in turn.
-- Arguments (after --): a file of request bodies, one JSON document per line; the API key.
local requests = {}
local count = 0
local next_index = 0

function init(args)
   local headers = {
      ["Host"] = wrk.host .. ":" .. wrk.port,
      ["Content-Type"] = "application/json",
      ["X-Authorization-Key"] = args[2],
   }
   for line in io.lines(args[1]) do
      if #line > 0 then
         count = count + 1
         requests[count] = wrk.format("POST", "/bat/messagelist", headers, line)
      end
   end
   if count == 0 then
      error("no request bodies in " .. args[1])
   end
   -- Threads start at different bodies, so they do not send the same batch in step.
   math.randomseed(os.time() + 7919 * (thread_index or 0))
   next_index = math.random(count) - 1
end

function request()
   next_index = next_index % count + 1
   return requests[next_index]
end
