-- One CWMP session per two wrk requests, as a CPE must run it: the Inform, then, once its answer
-- is in, the empty POST. wrk's request() does not say which connection asks, so this is only
-- right with one connection per wrk thread (wrk -tN -cN), each thread alternating on its own.
-- The Inform body is read from the file in the INFORM environment variable (bench-ceiling.sh
-- renders it with `cpe-sim check`). Set CLOSE=1 to end each session with `Connection: close`.
init = function(args)
  local f = assert(io.open(os.getenv("INFORM"), "r"))
  local inform = f:read("*a")
  f:close()
  inform_req = wrk.format("POST", "/", { ["Content-Type"] = "text/xml; charset=\"utf-8\"", ["SOAPAction"] = "" }, inform)
  local empty_headers = { ["Content-Length"] = "0" }
  if os.getenv("CLOSE") == "1" then
    empty_headers["Connection"] = "close"
  end
  empty_req = wrk.format("POST", "/", empty_headers, "")
  sent = 0
end

request = function()
  sent = sent + 1
  if sent % 2 == 1 then
    return inform_req
  end
  return empty_req
end
