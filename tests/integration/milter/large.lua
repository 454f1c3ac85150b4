-- large.lua - a body of several MB in many chunks is accepted and tagged;
-- one over max_message_size (12M in the test configuration) is refused
-- with 552 5.3.4, and the connection still carries the next message.
dofile(os.getenv("MT_DIR") .. "/common.lua")
mt.set_timeout(60)

local conn = open(nil, nil, nil)
greet(conn, "big.example", "192.0.2.20")
envelope(conn, "sender@sender.test", {"rcpt@test.example"}, "BIG1")
ok(mt.header(conn, "Subject", "eight megabytes"), "header")
ok(mt.eoh(conn), "eoh")
ok(mt.bodyrandom(conn, 8 * 1024 * 1024), "8 MB body")
ok(mt.eom(conn), "eom")
check(mt.getreply(conn) == SMFIR_ACCEPT, "8 MB accepted")
check(mt.eom_check(conn, MT_HDRINSERT, "X-Sluice-Status"), "8 MB tagged")

envelope(conn, "sender@sender.test", {"rcpt@test.example"}, "BIG2")
ok(mt.header(conn, "Subject", "thirteen megabytes"), "header")
ok(mt.eoh(conn), "eoh")
ok(mt.bodyrandom(conn, 13 * 1024 * 1024), "13 MB body")
ok(mt.eom(conn), "eom")
check(mt.getreply(conn) == SMFIR_REPLYCODE, "13 MB refused")
check(mt.eom_check(conn, MT_SMTPREPLY, "552", "5.3.4",
      "Error: message file too big"), "552 text")

check(one(conn, "none", "BIG3") == SMFIR_ACCEPT, "next message accepted")
mt.disconnect(conn)
print("large: ok")
