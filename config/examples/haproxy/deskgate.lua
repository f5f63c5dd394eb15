-- deskgate forward auth for HAProxy 2.6+ (core.httpclient): asks deskgate's forward-auth
-- endpoint about each request and copies its answer into the request.
--
-- In haproxy.cfg:
--   global
--     lua-load /etc/haproxy/deskgate.lua
--     setenv DESKGATE_URL http://127.0.0.1:8080/.deskgate/authz/forward-auth
--   frontend apps
--     http-request lua.deskgate
--     http-request redirect location %[var(txn.deskgate_location)] code 302 if { var(txn.deskgate_status) -m int 302 }
--     http-request return status 401 if { var(txn.deskgate_status) -m int 401 }
--     http-request deny deny_status 403 unless { var(txn.deskgate_status) -m int 200 }
--
-- HAProxy's address must be in deskgate's server.trusted_proxies.

local prefix = "x-deskgate-"
-- Every identity header deskgate answers with; each is set on the request, empty when the
-- answer has none, so a client's own value never reaches the app.
local identity = { "user", "email", "email-verified", "name", "usergroups", "permissions", "provider", "auth", "jwt" }

local function first(headers, name)
  local values = headers[name]
  if values == nil then return nil end
  return values[0] or values[1]
end

core.register_action("deskgate", { "http-req" }, function(txn)
  -- Remove every client spelling of an identity header (`_` for `-`, any case).
  for name, _ in pairs(txn.http:req_get_headers()) do
    local normal = string.lower(name):gsub("_", "-")
    if string.sub(normal, 1, #prefix) == prefix then
      txn.http:req_del_header(name)
    end
  end
  local ask = {
    ["x-forwarded-method"] = { txn.sf:method() },
    ["x-forwarded-proto"] = { txn.sf:ssl_fc() and "https" or "http" },
    ["x-forwarded-host"] = { txn.sf:req_fhdr("host") or "" },
    ["x-forwarded-uri"] = { txn.sf:pathq() },
    ["x-forwarded-for"] = { txn.sf:src() },
  }
  local cookie = txn.sf:req_fhdr("cookie")
  if cookie ~= nil then ask["cookie"] = { cookie } end
  local accept = txn.sf:req_fhdr("accept")
  if accept ~= nil then ask["accept"] = { accept } end

  -- Read here rather than at load time: `setenv` may come after `lua-load` in haproxy.cfg.
  local answer = core.httpclient():get({ url = os.getenv("DESKGATE_URL"), headers = ask, timeout = 5000 })
  local status = answer and answer.status or 0
  txn:set_var("txn.deskgate_status", status)
  if status == 200 then
    for _, suffix in ipairs(identity) do
      txn.http:req_set_header(prefix .. suffix, first(answer.headers, prefix .. suffix) or "")
    end
  elseif status == 302 then
    txn:set_var("txn.deskgate_location", first(answer.headers, "location") or "/")
  end
end, 0)
