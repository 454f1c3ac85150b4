#!/usr/bin/env python3
"""
bad_input.py - hostile SMTP clients against sluiced's ingress, while a
well-behaved client keeps sending mail through the same daemon.

  bad_input.py PORT MAILDIR [IDLE_TIMEOUT]

Each case opens its own session and asserts the reply (or the timeout);
after each, the same session (where the case allows) must still work.
Meanwhile a background client sends one message every 0.2 s; all of its
messages must be accepted.  Messages of the truncated-DATA cases must not
be delivered.  Prints one line per case; exit 1 if any case failed.

Recipients: good<N>@test.example for the background client, bad-<case>@
test.example for the hostile ones (so the Maildir tells which arrived).
"""
import os
import socket
import sys
import threading
import time

PORT = int(sys.argv[1])
MAILDIR = sys.argv[2]
IDLE = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
failures = []


class Conn:
    def __init__(self, timeout=30):
        self.s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
        self.buf = b""
        self.banner = self.reply()

    def line(self):
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("connection closed")
            self.buf += d
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.rstrip(b"\r").decode("latin-1")

    def reply(self):
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                return ln[:3], " | ".join(lines)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.s.sendall(data)

    def cmd(self, line):
        self.send(line + "\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply()

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def check(case, cond, what):
    print("%-28s %s %s" % (case, "ok  " if cond else "FAIL", what))
    if not cond:
        failures.append(case)


def still_works(case, c):
    """The session goes on: a full transaction after the bad input."""
    try:
        c.cmd("RSET")
        code, text = c.cmd("MAIL FROM:<s@sender.test>")
        ok = code == "250"
        if ok:
            code, text = c.cmd("RCPT TO:<after-%s@test.example>" % case)
            ok = code == "250"
        if ok:
            code, text = c.cmd("DATA")
            ok = code == "354"
        if ok:
            code, text = c.cmd(b"Subject: after " + case.encode() +
                               b"\r\n\r\nstill here\r\n.")
            ok = code == "250"
        check(case + "/after", ok, "session still works: " + text)
    except (OSError, EOFError) as e:
        check(case + "/after", False, "session died: %s" % e)


# ---------------------------------------------------------------- good client
good = {"sent": 0, "failed": 0, "errors": []}
stop = threading.Event()


def good_client():
    n = 0
    c = None
    while not stop.is_set():
        try:
            if c is None:
                c = Conn()
                code, text = c.cmd("EHLO good.test")
                if code != "250":
                    raise RuntimeError("EHLO: " + text)
            n += 1
            steps = [("MAIL FROM:<g@sender.test>", "250"),
                     ("RCPT TO:<good%d@test.example>" % n, "250"),
                     ("DATA", "354"),
                     ("Subject: good %d\r\nX-Good: %d\r\n\r\nbody %d\r\n." %
                      (n, n, n), "250")]
            for cmd, want in steps:
                code, text = c.cmd(cmd)
                if code != want:
                    raise RuntimeError("%s -> %s" % (cmd.split()[0], text))
            good["sent"] += 1
        except Exception as e:  # noqa: BLE001 - every failure counts
            good["failed"] += 1
            good["errors"].append(str(e))
            if c:
                c.close()
            c = None
        stop.wait(0.2)
    if c:
        c.cmd("QUIT")
        c.close()


bg = threading.Thread(target=good_client)
bg.start()
time.sleep(0.5)

# ---------------------------------------------------------------- cases
# 1. Overlong command line.
c = Conn()
c.cmd("EHLO bad.test")
code, text = c.cmd("NOOP " + "x" * 100000)
check("long_line", code == "500", "100 kB command: " + text[:80])
check("long_line/5.5.2", "5.5.2" in text, "enhanced code 5.5.2: " + text[:80])
still_works("long_line", c)
c.close()

# 2. NUL bytes in a command, and in message content.
c = Conn()
c.cmd("EHLO bad.test")
code, text = c.cmd(b"HELO a\x00b")
check("nul_command", code.startswith("5"), "NUL in HELO: " + text[:80])
still_works("nul_command", c)
c.cmd("MAIL FROM:<s@sender.test>")
c.cmd("RCPT TO:<bad-nul-data@test.example>")
c.cmd("DATA")
code, text = c.cmd(b"Subject: nul\r\n\r\nbinary \x00 zero\r\n.")
check("nul_data", code[:1] in ("2", "5"),
      "NUL in content: accepted or refused, clearly: " + text[:80])
still_works("nul_data", c)
c.close()

# 3. Commands out of order.
c = Conn()
code, text = c.cmd("MAIL FROM:<s@sender.test>")
check("order/mail_before_helo", code == "503", "MAIL before EHLO: " + text[:80])
c.cmd("EHLO bad.test")
code, text = c.cmd("RCPT TO:<x@test.example>")
check("order/rcpt_before_mail", code == "503", "RCPT before MAIL: " + text[:80])
code, text = c.cmd("DATA")
check("order/data_before_rcpt", code == "503", "DATA before MAIL: " + text[:80])
c.cmd("MAIL FROM:<s@sender.test>")
code, text = c.cmd("MAIL FROM:<s@sender.test>")
check("order/mail_twice", code == "503", "MAIL twice: " + text[:80])
code, text = c.cmd("DATA")
check("order/data_without_rcpt", code in ("503", "554"),
      "DATA without RCPT: " + text[:80])
code, text = c.cmd("BOGUS command")
check("order/unknown", code in ("500", "502"), "unknown command: " + text[:80])
still_works("order", c)
c.close()

# 4. Huge headers: a folded 1 MB field and a 1 MB single-line field.
for case, field in (
        ("huge_header_folded",
         b"X-Huge: " + b"\r\n\t".join([b"y" * 70] * 15000)),
        ("huge_header_line", b"X-Huge: " + b"z" * (1 << 20))):
    c = Conn(timeout=60)
    c.cmd("EHLO bad.test")
    c.cmd("MAIL FROM:<s@sender.test>")
    c.cmd("RCPT TO:<bad-%s@test.example>" % case)
    c.cmd("DATA")
    try:
        code, text = c.cmd(b"Subject: huge\r\n" + field + b"\r\n\r\nbody\r\n.")
        check(case, code[:1] in ("2", "5"),
              "1 MB header: accepted or refused per limits: " + text[:80])
        still_works(case, c)
    except (OSError, EOFError) as e:
        check(case, False, "connection died: %s" % e)
    c.close()

# 5. Truncated DATA: the client goes away mid-message.
c = Conn()
c.cmd("EHLO bad.test")
c.cmd("MAIL FROM:<s@sender.test>")
c.cmd("RCPT TO:<bad-truncated@test.example>")
c.cmd("DATA")
c.send(b"Subject: truncated\r\n\r\nhalf a mess")
c.close()
check("truncated_data", True, "client closed mid-DATA (delivery checked later)")

# 6. A client that stalls: 421 after idle_timeout, then closed.
for case, prep in (("stall_idle", []),
                   ("stall_data", ["MAIL FROM:<s@sender.test>",
                                   "RCPT TO:<bad-stall@test.example>",
                                   "DATA"])):
    c = Conn(timeout=IDLE * 3 + 10)
    c.cmd("EHLO bad.test")
    for p in prep:
        c.cmd(p)
    if prep:
        c.send(b"Subject: stalled\r\n\r\npart")
    t0 = time.time()
    try:
        code, text = c.reply()
        dt = time.time() - t0
        check(case, code == "421" and dt < IDLE * 3 + 5,
              "stalled client got %s after %.1fs: %s" % (code, dt, text[:60]))
        try:
            rest = c.s.recv(100)
            check(case + "/closed", rest == b"", "connection closed after 421")
        except OSError as e:
            check(case + "/closed", True, "connection closed after 421 (%s)" % e)
    except (OSError, EOFError) as e:
        check(case, False, "no 421 before close/timeout: %s" % e)
    c.close()

# 7. Garbage: binary junk as commands.
c = Conn()
try:
    c.send(bytes(range(256)) * 64 + b"\r\n")
    code, text = c.reply()
    check("garbage", code[:1] in ("5", "4"), "binary junk: " + text[:60])
except (OSError, EOFError) as e:
    check("garbage", True, "binary junk: connection closed (%s)" % e)
c.close()

stop.set()
bg.join()
check("good_client", good["failed"] == 0 and good["sent"] > 5,
      "background client: %d sent, %d failed %s" %
      (good["sent"], good["failed"], good["errors"][:3]))

# Delivery: the good messages and the after-* ones arrive; the truncated
# and stalled ones never do.
deadline = time.time() + 30


def delivered():
    got = {}
    for sub in ("new", "cur"):
        d = os.path.join(MAILDIR, sub)
        for f in os.listdir(d) if os.path.isdir(d) else []:
            with open(os.path.join(d, f), "rb") as fp:
                for ln in fp:
                    if ln.lower().startswith(b"delivered-to:"):
                        a = ln.split(b":", 1)[1].strip().decode("latin-1")
                        got[a] = got.get(a, 0) + 1
                        break
    return got


while True:
    got = delivered()
    ngood = sum(1 for a in got if a.startswith("good"))
    if ngood >= good["sent"] or time.time() > deadline:
        break
    time.sleep(0.3)
time.sleep(1)
got = delivered()
ngood = sum(1 for a in got if a.startswith("good"))
check("delivered/good", ngood == good["sent"] and
      all(got[a] == 1 for a in got if a.startswith("good")),
      "%d of %d good messages delivered once" % (ngood, good["sent"]))
for a in ("bad-truncated@test.example", "bad-stall@test.example"):
    check("delivered/" + a.split("@")[0], a not in got,
          "%s not delivered" % a)
after = [a for a in got if a.startswith("after-")]
check("delivered/after", len(after) >= 5,
      "%d after-* messages delivered" % len(after))

print("bad_input: %d checks failed: %s" % (len(failures), " ".join(failures))
      if failures else "bad_input: all checks passed")
sys.exit(1 if failures else 0)
