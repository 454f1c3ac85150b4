-- sessions.lua - aborted messages, reused and interleaved connections,
-- an abrupt disconnect in the middle of a body: the daemon goes on.
dofile(os.getenv("MT_DIR") .. "/common.lua")

local conn = open(nil, nil, nil)
greet(conn, "reuse.example", "192.0.2.40")
-- abort after the header
envelope(conn, "sender@sender.test", {"rcpt@test.example"}, "AB1")
ok(mt.data(conn), "data")
ok(mt.header(conn, "Subject", "aborted"), "header")
ok(mt.eoh(conn), "eoh")
ok(mt.abort(conn), "abort")
-- abort right after MAIL
envelope(conn, "sender@sender.test", {}, "AB2")
ok(mt.abort(conn), "abort after mail")
-- the connection still carries messages
for i = 1, 5 do
	check(one(conn, "none", "RE" .. i) == SMFIR_ACCEPT, "reuse " .. i)
end

-- two connections interleaved
local c2 = open(nil, nil, nil)
greet(c2, "second.example", "192.0.2.41")
envelope(conn, "sender@sender.test", {"a@test.example"}, "IL1")
envelope(c2, "sender@sender.test", {"b@test.example"}, "IL2")
ok(mt.data(c2), "data")
ok(mt.header(c2, "X-Sluice-Test", "reject"), "header")
ok(mt.data(conn), "data")
ok(mt.header(conn, "Subject", "one"), "header")
ok(mt.eoh(conn), "eoh")
ok(mt.eoh(c2), "eoh")
ok(mt.eom(c2), "eom")
check(mt.getreply(c2) == SMFIR_REPLYCODE, "interleaved: reject")
ok(mt.eom(conn), "eom")
check(mt.getreply(conn) == SMFIR_ACCEPT, "interleaved: accept")
mt.disconnect(c2)

-- gone in the middle of a body, without QUIT
envelope(conn, "sender@sender.test", {"rcpt@test.example"}, "GONE")
ok(mt.header(conn, "Subject", "gone"), "header")
ok(mt.eoh(conn), "eoh")
ok(mt.bodystring(conn, "partial body\r\n"), "body")
mt.disconnect(conn, false)

-- and the daemon still serves
conn = open(nil, nil, nil)
greet(conn, "after.example", "192.0.2.42")
check(one(conn, "none", "AFTER") == SMFIR_ACCEPT, "served after a drop")
mt.disconnect(conn)
print("sessions: ok")
