-- GET request paths read from a file, taken in turn (Jasmin's /send?… URLs, the
-- console's pages). Arguments (after --): the file, one path with its query string
-- per line; optionally a Cookie header's value (the console's session).
local requests = {}
local count = 0
local next_index = 0

function init(args)
   local headers = { ["Host"] = wrk.host .. ":" .. wrk.port }
   if args[2] and #args[2] > 0 then
      headers["Cookie"] = args[2]
   end
   for line in io.lines(args[1]) do
      if #line > 0 then
         count = count + 1
         requests[count] = wrk.format("GET", line, headers)
      end
   end
   if count == 0 then
      error("no paths in " .. args[1])
   end
   math.randomseed(os.time() + 7919 * (thread_index or 0))
   next_index = math.random(count) - 1
end

function request()
   next_index = next_index % count + 1
   return requests[next_index]
end
