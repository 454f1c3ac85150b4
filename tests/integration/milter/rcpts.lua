-- rcpts.lua - recipient changes over the milter protocol (run by
-- redirect.sh milter, whose policy redirects "redirect-me" to
-- alice@test.example): SMFIF_ADDRCPT and SMFIF_DELRCPT are asked for and
-- the change comes as ADDRCPT/DELRCPT at end of message; an MTA that
-- grants neither gets 451 for a redirected message, never an accept.
dofile(os.getenv("MT_DIR") .. "/common.lua")

local function redirected(conn, qid)
	envelope(conn, "sender@sender.test", {"bob@test.example"}, qid)
	return message(conn, {{"From", "sender@sender.test"},
	                      {"To", "bob@test.example"},
	                      {"Subject", "redirect-me " .. qid}},
	               "Hello.\r\n")
end

local conn = open(nil, nil, nil)
check(mt.test_action(conn, SMFIF_ADDRCPT), "asks to add recipients")
check(mt.test_action(conn, SMFIF_DELRCPT), "asks to remove recipients")
greet(conn, "client.example", "192.0.2.7", "helo.example")
check(redirected(conn, "R1") == SMFIR_ACCEPT, "redirected mail accepted")
check(mt.eom_check(conn, MT_RCPTADD, "<alice@test.example>"), "alice added")
check(mt.eom_check(conn, MT_RCPTDELETE, "<bob@test.example>"), "bob removed")
mt.disconnect(conn)

-- the MTA offers header edits and quarantine only
conn = open(nil, SMFIF_ADDHDRS + SMFIF_CHGHDRS + SMFIF_QUARANTINE, nil)
check(not mt.test_action(conn, SMFIF_ADDRCPT), "not granted: add")
greet(conn, "client.example", "192.0.2.8", "helo.example")
redirected(conn, "R2")
check(mt.eom_check(conn, MT_SMTPREPLY, "451", "4.3.0", "filter failure"),
      "no recipient changes allowed: tempfail")
check(not mt.eom_check(conn, MT_RCPTADD, "<alice@test.example>"),
      "nothing added")
mt.disconnect(conn)
print("rcpts: ok")
