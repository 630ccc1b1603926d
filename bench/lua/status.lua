-- GET /bat/message/{id} for ids read from a file.
-- Arguments (after --): the ids file, one id per line; the API key; the order,
-- "random" (default: any id, uniformly) or "sequential" (each id in file order, then
-- again); for "sequential", how many ids to skip first (to continue an earlier run).
local ids = {}
local count = 0
local position = 0
local sequential = false
local headers = {}

function init(args)
   for line in io.lines(args[1]) do
      if #line > 0 then
         count = count + 1
         ids[count] = line
      end
   end
   if count == 0 then
      error("no ids in " .. args[1])
   end
   headers["Host"] = wrk.host .. ":" .. wrk.port
   headers["X-Authorization-Key"] = args[2]
   sequential = args[3] == "sequential"
   position = (tonumber(args[4] or "0") or 0) % count
   math.randomseed(os.time() + 7919 * (thread_index or 0))
end

function request()
   local id
   if sequential then
      position = position % count + 1
      id = ids[position]
   else
      id = ids[math.random(count)]
   end
   return wrk.format("GET", "/bat/message/" .. id, headers)
end
