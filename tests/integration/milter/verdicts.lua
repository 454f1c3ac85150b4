-- verdicts.lua - every callback and every verdict over one reused
-- connection: EOM accept/reject/tempfail/discard/quarantine, header edits,
-- body replacement, the client macros, and early verdicts at connect,
-- HELO, MAIL and RCPT.
dofile(os.getenv("MT_DIR") .. "/common.lua")

local conn = open(nil, nil, nil)
check(mt.test_action(conn, SMFIF_ADDHDRS), "asks to add headers")
check(mt.test_action(conn, SMFIF_CHGHDRS), "asks to change headers")
check(mt.test_action(conn, SMFIF_CHGBODY), "asks to replace the body")
check(mt.test_action(conn, SMFIF_QUARANTINE), "asks to quarantine")
greet(conn, "client.example", "192.0.2.7", "helo.example")

-- plain mail: accepted, tagged with the trace header
check(one(conn, "none", "Q1") == SMFIR_ACCEPT, "plain mail accepted")
check(mt.eom_check(conn, MT_HDRINSERT, "X-Sluice-Status"), "trace header")

-- the macros reach the stages (reply text of the whoami trigger)
check(one(conn, "whoami", "Q2") == SMFIR_REPLYCODE, "whoami refused")
check(mt.eom_check(conn, MT_SMTPREPLY, "550", "5.7.0",
      "whoami addr=192.0.2.7 name=client.example helo=helo.example " ..
      "ident=Q2 auth=alice from=sender@sender.test rcpts=1"),
      "client facts from the macros")

-- EOM verdicts (the same connection, message after message)
check(one(conn, "accept", "Q3") == SMFIR_ACCEPT, "accept")
check(one(conn, "reject", "Q4") == SMFIR_REPLYCODE, "reject")
check(mt.eom_check(conn, MT_SMTPREPLY, "550", "5.7.1",
      "sluice test: reject in eom"), "reject text")
check(one(conn, "tempfail", "Q5") == SMFIR_REPLYCODE, "tempfail")
check(mt.eom_check(conn, MT_SMTPREPLY, "451", "4.7.1",
      "sluice test: tempfail in eom"), "tempfail text")
check(one(conn, "discard", "Q6") == SMFIR_DISCARD, "discard")
check(one(conn, "quarantine", "Q7") == SMFIR_ACCEPT, "quarantine accepts")
check(mt.eom_check(conn, MT_QUARANTINE, "sluice test: quarantine in eom"),
      "quarantine reason")

-- header edits replayed
check(one(conn, "tag", "Q8") == SMFIR_ACCEPT, "tag accepted")
check(mt.eom_check(conn, MT_HDRADD, "X-Sluice-Verdict-Test"), "header added")
check(mt.eom_check(conn, MT_HDRINSERT, "X-Sluice-Top"), "header inserted")
check(mt.eom_check(conn, MT_HDRCHANGE, "Subject"), "header changed")
check(mt.eom_check(conn, MT_HDRDELETE, "X-Sluice-Delete-Me"), "header deleted")
check(not mt.eom_check(conn, MT_BODYCHANGE), "body kept")

-- body replaced
check(one(conn, "body", "Q9") == SMFIR_ACCEPT, "body accepted")
check(mt.eom_check(conn, MT_BODYCHANGE), "body replaced")

-- RCPT: one recipient refused, the other goes on
mt.macro(conn, SMFIC_MAIL, "i", "Q10")
ok(mt.mailfrom(conn, "<sender@sender.test>"), "mail")
check(mt.getreply(conn) == SMFIR_CONTINUE, "mail continues")
ok(mt.rcptto(conn, "<reject-rcpt@test.example>"), "rcpt")
check(mt.getreply(conn) == SMFIR_REPLYCODE, "rcpt refused")
ok(mt.rcptto(conn, "<ok@test.example>"), "rcpt 2")
check(mt.getreply(conn) == SMFIR_CONTINUE, "second rcpt continues")
check(message(conn, {{"Subject", "x"}}, "x\r\n") == SMFIR_ACCEPT, "rcpt msg")

-- MAIL: refused, then the connection carries another message
mt.macro(conn, SMFIC_MAIL, "i", "Q11")
ok(mt.mailfrom(conn, "<tempfail-mail@sender.test>"), "mail")
check(mt.getreply(conn) == SMFIR_REPLYCODE, "mail refused")
check(one(conn, "none", "Q12") == SMFIR_ACCEPT, "mail after a refused MAIL")
mt.disconnect(conn)

-- CONNECT and HELO verdicts
conn = open(nil, nil, nil)
mt.macro(conn, SMFIC_CONNECT, "{client_addr}", "192.0.2.8",
         "{client_name}", "reject.connect.test")
ok(mt.conninfo(conn, "reject.connect.test", "192.0.2.8"), "conninfo")
check(mt.getreply(conn) == SMFIR_REPLYCODE, "connect refused")
mt.disconnect(conn)

conn = open(nil, nil, nil)
mt.macro(conn, SMFIC_CONNECT, "{client_addr}", "192.0.2.9")
ok(mt.conninfo(conn, "ok.example", "192.0.2.9"), "conninfo")
check(mt.getreply(conn) == SMFIR_CONTINUE, "connect ok")
ok(mt.helo(conn, "tempfail.helo.test"), "helo")
check(mt.getreply(conn) == SMFIR_REPLYCODE, "helo refused")
mt.disconnect(conn)
print("verdicts: ok")
