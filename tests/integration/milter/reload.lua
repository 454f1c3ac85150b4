-- reload.lua - a reload (SIGHUP to sluiced, pid in SL_PID) in the middle
-- of a message: the old worker finishes it, the new ones take new
-- connections on the same socket, nothing is refused in between.
dofile(os.getenv("MT_DIR") .. "/common.lua")

local conn = open(nil, nil, nil)
greet(conn, "reload.example", "192.0.2.50")
envelope(conn, "sender@sender.test", {"rcpt@test.example"}, "RL1")
ok(mt.data(conn), "data")
ok(mt.header(conn, "Subject", "across a reload"), "header")
check(os.execute("kill -HUP " .. os.getenv("SL_PID")), "sent SIGHUP")
for i = 1, 20 do -- new connections while the generations change
	local c = open(nil, nil, nil)
	greet(c, "during.example", "192.0.2.51")
	check(one(c, "none", "RLD" .. i) == SMFIR_ACCEPT, "during reload " .. i)
	mt.disconnect(c)
	mt.sleep(0.1)
end
ok(mt.eoh(conn), "eoh")
ok(mt.bodystring(conn, "finished by the old worker\r\n"), "body")
ok(mt.eom(conn), "eom")
check(mt.getreply(conn) == SMFIR_ACCEPT, "in-flight message accepted")
check(mt.eom_check(conn, MT_HDRINSERT, "X-Sluice-Status"), "and scanned")
mt.disconnect(conn)
conn = open(nil, nil, nil)
greet(conn, "after.example", "192.0.2.52")
check(one(conn, "none", "RL2") == SMFIR_ACCEPT, "after the reload")
mt.disconnect(conn)
print("reload: ok")
