-- One CWMP session per wrk "request": an Inform and the empty POST, pipelined on one connection
-- (faster than any CPE can go: a CPE waits for the InformResponse before its next POST).
-- The Inform body is read from the file in the INFORM environment variable (bench-ceiling.sh
-- renders it with `cpe-sim check`). Set CLOSE=1 to end each session with `Connection: close`
-- (a fresh connection per session, as real CPEs and cpe-sim's per-session mode do).
init = function(args)
  local f = assert(io.open(os.getenv("INFORM"), "r"))
  local inform = f:read("*a")
  f:close()
  local inform_req = wrk.format("POST", "/", { ["Content-Type"] = "text/xml; charset=\"utf-8\"", ["SOAPAction"] = "" }, inform)
  local empty_headers = { ["Content-Length"] = "0" }
  if os.getenv("CLOSE") == "1" then
    empty_headers["Connection"] = "close"
  end
  session = inform_req .. wrk.format("POST", "/", empty_headers, "")
end

request = function()
  return session
end
