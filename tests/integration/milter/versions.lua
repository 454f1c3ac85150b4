-- versions.lua - protocol version 2 MTAs, the JSMS profile (detected from
-- the offered actions: header add/change and quarantine, no body), and an
-- MTA that offers no quarantine.
dofile(os.getenv("MT_DIR") .. "/common.lua")

-- version 2, every v2 action offered
local all2 = SMFIF_ADDHDRS + SMFIF_CHGHDRS + SMFIF_CHGBODY + SMFIF_QUARANTINE
local conn = open(2, all2, 0x7f) -- SMFI_V2_PROT
check(mt.test_action(conn, SMFIF_CHGBODY), "v2: body change requested")
greet(conn, "v2.example", "192.0.2.30")
check(one(conn, "tag", "V2A") == SMFIR_ACCEPT, "v2: tag accepted")
check(mt.eom_check(conn, MT_HDRADD, "X-Sluice-Verdict-Test"), "v2: added")
check(mt.eom_check(conn, MT_HDRCHANGE, "Subject"), "v2: changed")
check(one(conn, "reject", "V2B") == SMFIR_REPLYCODE, "v2: reject")
check(one(conn, "body", "V2C") == SMFIR_ACCEPT, "v2: body accepted")
check(mt.eom_check(conn, MT_BODYCHANGE), "v2: body replaced")
mt.disconnect(conn)

-- JSMS: version 2, header add/change and quarantine only, few macros
local jsms = SMFIF_ADDHDRS + SMFIF_CHGHDRS + SMFIF_QUARANTINE
conn = open(2, jsms, 0x7f)
check(not mt.test_action(conn, SMFIF_CHGBODY), "jsms: no body change asked")
mt.macro(conn, SMFIC_CONNECT, "j", "jsms.sluice.test",
         "{client_addr}", "192.0.2.31", "i", "JSMS1")
ok(mt.conninfo(conn, "jsms-client.example", "192.0.2.31"), "conninfo")
check(mt.getreply(conn) == SMFIR_CONTINUE, "jsms: connect")
ok(mt.helo(conn, "jsms-helo.example"), "helo")
check(mt.getreply(conn) == SMFIR_CONTINUE, "jsms: helo")
mt.macro(conn, SMFIC_MAIL, "{mail_addr}", "s@sender.test",
         "{mail_host}", "sender.test")
ok(mt.mailfrom(conn, "<s@sender.test>"), "mail")
check(mt.getreply(conn) == SMFIR_CONTINUE, "jsms: mail")
mt.macro(conn, SMFIC_RCPT, "{rcpt_addr}", "r@test.example",
         "{rcpt_host}", "test.example")
ok(mt.rcptto(conn, "<r@test.example>"), "rcpt")
check(mt.getreply(conn) == SMFIR_CONTINUE, "jsms: rcpt")
check(message(conn, {{"Subject", "s"}, {"X-Sluice-Test", "tag body"}},
              "x\r\n") == SMFIR_ACCEPT, "jsms: tag+body accepted")
check(mt.eom_check(conn, MT_HDRADD, "X-Sluice-Top"),
      "jsms: insert became an add")
check(not mt.eom_check(conn, MT_HDRINSERT), "jsms: no insert")
check(not mt.eom_check(conn, MT_BODYCHANGE), "jsms: body not replaced")
check(mt.eom_check(conn, MT_HDRADD, "X-Sluice-Body-Change"),
      "jsms: body change noted in a header")
check(mt.eom_check(conn, MT_HDRCHANGE, "Subject"), "jsms: changed")
check(one(conn, "whoami", "JSMS2") == SMFIR_REPLYCODE, "jsms: whoami")
check(mt.eom_check(conn, MT_SMTPREPLY, "550", "5.7.0",
      "whoami addr=192.0.2.31 name=jsms-client.example " ..
      "helo=jsms-helo.example ident=JSMS2 auth=alice " ..
      "from=sender@sender.test rcpts=1"), "jsms: client facts")
check(one(conn, "quarantine", "JSMS3") == SMFIR_ACCEPT, "jsms: quarantine")
check(mt.eom_check(conn, MT_QUARANTINE), "jsms: quarantined")
mt.disconnect(conn)

-- an MTA without quarantine: the fallback (tempfail) applies
conn = open(6, SMFIF_ADDHDRS + SMFIF_CHGHDRS, nil)
greet(conn, "noq.example", "192.0.2.32")
check(one(conn, "quarantine", "NOQ1") == SMFIR_REPLYCODE,
      "no quarantine: tempfail")
mt.disconnect(conn)
print("versions: ok")
