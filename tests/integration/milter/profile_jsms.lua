-- profile_jsms.lua - `profile jsms` forced in the configuration, over a
-- unix socket: even an MTA offering everything gets no body replacement
-- (a header notes it) and no header insertion (appended instead).
dofile(os.getenv("MT_DIR") .. "/common.lua")

local conn = open(nil, nil, nil)
check(not mt.test_action(conn, SMFIF_CHGBODY), "jsms: no body change asked")
check(mt.test_action(conn, SMFIF_QUARANTINE), "jsms: quarantine asked")
greet(conn, "unix.example", "192.0.2.60")
check(one(conn, "tag body", "U1") == SMFIR_ACCEPT, "jsms: accepted")
check(mt.eom_check(conn, MT_HDRADD, "X-Sluice-Top"), "jsms: insert as add")
check(not mt.eom_check(conn, MT_BODYCHANGE), "jsms: body kept")
check(mt.eom_check(conn, MT_HDRADD, "X-Sluice-Body-Change"), "jsms: noted")
mt.disconnect(conn)
print("profile_jsms: ok")
