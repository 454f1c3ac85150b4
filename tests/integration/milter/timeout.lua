-- timeout.lua - the chain is slower than reply_timeout (a `hang` stage):
-- the filter answers tempfail by itself (or accept with fail_open yes,
-- EXPECT=accept), the connection then gets the same answer until it is
-- closed, and a new connection is served normally.
dofile(os.getenv("MT_DIR") .. "/common.lua")
local accept = os.getenv("EXPECT") == "accept"

local conn = open(nil, nil, nil)
greet(conn, "slow.example", "192.0.2.70")
local r = one(conn, "hang", "SLOW1")
if accept then
	check(r == SMFIR_ACCEPT, "fail_open: accepted unscanned")
else
	check(r == SMFIR_REPLYCODE, "timeout: refused")
	check(mt.eom_check(conn, MT_SMTPREPLY, "451", "4.3.0", "filter failure"),
	      "timeout: 451 4.3.0")
	mt.macro(conn, SMFIC_MAIL, "i", "SLOW2")
	ok(mt.mailfrom(conn, "<sender@sender.test>"), "mail")
	check(mt.getreply(conn) == SMFIR_REPLYCODE, "broken session: tempfail")
end
mt.disconnect(conn)

conn = open(nil, nil, nil)
greet(conn, "fast.example", "192.0.2.71")
check(one(conn, "none", "FAST1") == SMFIR_ACCEPT, "a new connection works")
mt.disconnect(conn)
print("timeout: ok")
