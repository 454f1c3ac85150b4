-- common.lua - helpers for the miltertest scripts (loaded with dofile).
-- MILTER_SOCK names sluiced's milter socket (inet:PORT@127.0.0.1).
SOCK = os.getenv("MILTER_SOCK") or "inet:3366@127.0.0.1"

-- miltertest does not always show a script's error: say it first.
function check(cond, what)
	if not cond then
		print("FAILED: " .. what)
		error("FAILED: " .. what, 2)
	end
end

function ok(rc, what)
	if rc ~= nil then
		print("FAILED: " .. what .. ": " .. tostring(rc))
		error("FAILED: " .. what .. ": " .. tostring(rc), 2)
	end
end

-- A negotiated connection; version/actions/steps nil = miltertest's defaults.
-- Debian's miltertest (1.0.0) puts its third argument on the wire as the
-- protocol steps and its fourth as the actions, the reverse of its manual
-- page (checked against a raw listener): hence the swap.
function open(version, actions, steps)
	local conn = mt.connect(SOCK, 40, 0.25)
	check(conn ~= nil, "connect to " .. SOCK)
	ok(mt.negotiate(conn, version, steps, actions), "negotiate")
	return conn
end

-- Connect info + HELO, expecting CONTINUE for both.
function greet(conn, name, addr, helo)
	mt.macro(conn, SMFIC_CONNECT, "j", "mx.sluice.test",
	         "{client_addr}", addr, "{client_name}", name,
	         "{daemon_addr}", "127.0.0.1")
	ok(mt.conninfo(conn, name, addr), "conninfo")
	check(mt.getreply(conn) == SMFIR_CONTINUE, "connect continues")
	ok(mt.helo(conn, helo or name), "helo")
	check(mt.getreply(conn) == SMFIR_CONTINUE, "helo continues")
end

-- MAIL + RCPTs, each expected to continue.
function envelope(conn, from, rcpts, qid)
	mt.macro(conn, SMFIC_MAIL, "i", qid or "QID", "{mail_addr}", from,
	         "{auth_authen}", "alice")
	ok(mt.mailfrom(conn, "<" .. from .. ">"), "mail")
	check(mt.getreply(conn) == SMFIR_CONTINUE, "mail continues")
	for _, r in ipairs(rcpts) do
		mt.macro(conn, SMFIC_RCPT, "{rcpt_addr}", r)
		ok(mt.rcptto(conn, "<" .. r .. ">"), "rcpt " .. r)
		check(mt.getreply(conn) == SMFIR_CONTINUE, "rcpt continues " .. r)
	end
end

-- Headers (a list of {name, value}) + body string, then EOM.
function message(conn, headers, body)
	ok(mt.data(conn), "data")
	for _, h in ipairs(headers) do
		ok(mt.header(conn, h[1], h[2]), "header " .. h[1])
	end
	ok(mt.eoh(conn), "eoh")
	if body ~= nil then ok(mt.bodystring(conn, body), "body") end
	ok(mt.eom(conn), "eom")
	return mt.getreply(conn)
end

-- A whole message whose X-Sluice-Test header is `trigger`.
function one(conn, trigger, qid)
	envelope(conn, "sender@sender.test", {"rcpt@test.example"}, qid)
	return message(conn, {{"From", "sender@sender.test"},
	                      {"To", "rcpt@test.example"},
	                      {"Subject", "test " .. trigger},
	                      {"X-Sluice-Delete-Me", "yes"},
	                      {"X-Sluice-Test", trigger}},
	               "Hello.\r\nSecond line.\r\n")
end
