-- Every request of a file sent exactly once, as fast as wrk's connections go
-- (bench/vs_kannel.py's end-to-end run): thread i of n takes lines i+1, i+1+n, ...
-- Each request is claimed in delay() before it is built, so no connection sends more
-- than the file holds: once a thread's lines are all claimed, its connections wait
-- (a delay of days), and when its last answer is in it writes "<answered> <non-2xx>"
-- to DIR/thread-<i> (the file's mtime says when) and stops. wrk itself runs until its
-- -d or a SIGINT from the bench, which reads those files. Built with targets.lua
-- (thread_index) and report.lua (the summary) by wrk.build_script.
-- Arguments (after --): "get" (lines are paths with their query) or "post" (lines are
-- JSON bodies for POST /bat/messagelist); the file; the number of wrk threads; DIR;
-- for "post", the API key.
local requests = {}
local count = 0
local claimed = 0
local sent = 0
local answered = 0
local failed = 0
local out_path = nil
local FOREVER_MS = 864000000

local function finish()
   local f = assert(io.open(out_path, "w"))
   f:write(string.format("%d %d\n", answered, failed))
   f:close()
end

function init(args)
   local kind, path, threads, dir = args[1], args[2], tonumber(args[3]), args[4]
   local index = thread_index or 0
   local headers = { ["Host"] = wrk.host .. ":" .. wrk.port }
   if kind == "post" then
      headers["Content-Type"] = "application/json"
      headers["X-Authorization-Key"] = args[5]
   end
   local line_no = 0
   for line in io.lines(path) do
      if #line > 0 then
         if line_no % threads == index then
            count = count + 1
            if kind == "post" then
               requests[count] = wrk.format("POST", "/bat/messagelist", headers, line)
            else
               requests[count] = wrk.format("GET", line, headers)
            end
         end
         line_no = line_no + 1
      end
   end
   out_path = dir .. "/thread-" .. index
   if count == 0 then
      finish()
   end
end

function delay()
   if claimed < count then
      claimed = claimed + 1
      return 0
   end
   return FOREVER_MS
end

function request()
   if sent >= claimed then
      -- Not preceded by a claim: wrk checking the script's request once, in thread 0,
      -- before it starts (it is never sent).
      return requests[1] or wrk.format()
   end
   sent = sent + 1
   return requests[sent]
end

function response(status, headers, body)
   answered = answered + 1
   if status < 200 or status > 299 then
      failed = failed + 1
   end
   if answered == count then
      finish()
      wrk.thread:stop()
   end
end
