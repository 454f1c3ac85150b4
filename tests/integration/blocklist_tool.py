#!/usr/bin/python3
"""blocklist_tool.py - clients for the blocklist integration test.

  send PORT ADDR FROM         one message to sluiced's smtp listener with
                              XFORWARD ADDR=ADDR; prints "mail=CODE TEXT"
                              and "data=CODE TEXT" (or "data=-")
  proto PORT                  malformed and well-formed requests to
                              sluice-blocklistd; checks every answer
  load PORT SECONDS OUT       pipelined queries on 2 connections for
                              SECONDS, checking every answer; writes the
                              counts to OUT; exit 1 on any failed query
  query PORT IP               one query; prints the answer line
  burst PORT N LOG            N messages at once (threads), listed and
                              unlisted clients mixed; checks each one's
                              symbols in sluiced's log LOG

Exit status 0 when every check passed.
"""
import random
import smtplib
import socket
import sys
import time


def send(port, addr, sender):
    s = smtplib.SMTP("127.0.0.1", int(port), timeout=30)
    s.ehlo("client.test")
    code, msg = s.docmd("XFORWARD", "ADDR=%s NAME=client.test PROTO=ESMTP" % addr)
    if code != 250:
        print("xforward=%d %s" % (code, msg.decode()))
        return 1
    code, msg = s.mail(sender)
    print("mail=%d %s" % (code, msg.decode()))
    if code != 250:
        print("data=-")
        s.quit()
        return 0
    s.rcpt("box@test.example")
    body = ("From: %s\r\nTo: box@test.example\r\nSubject: blocklist test\r\n"
            "Message-ID: <%s.%f@test>\r\n\r\nhello\r\n" % (sender, sender, time.time()))
    try:
        code, msg = s.data(body)
    except smtplib.SMTPDataError as e:
        code, msg = e.smtp_code, e.smtp_error
    print("data=%d %s" % (code, msg.decode() if isinstance(msg, bytes) else msg))
    s.quit()
    return 0


def lines_of(sock, n, timeout=5.0):
    sock.settimeout(timeout)
    buf = b""
    while buf.count(b"\n") < n:
        d = sock.recv(65536)
        if not d:
            break
        buf += d
    return buf.decode(errors="replace").split("\n")[:n]


def query(port, ip):
    c = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
    c.sendall(("Q 1 %s\n" % ip).encode())
    print(lines_of(c, 1)[0])
    return 0


def proto(port):
    cases = [
        (b"Q 1 192.0.2.9\n", "A 1 spam"),
        (b"Q 2 not-an-ip\n", "E 2 bad address"),
        (b"HELLO\n", "E - unknown command"),
        (b"Q 3\n", "E 3 usage: Q <id> <ip>"),
        (b"Q 4 192.0.2.1 extra\n", "E 4 extra arguments"),
        (b"\n", "E - empty request"),
        (b"Q  5 192.0.2.1\n", "E - bad spacing"),
        (b"Q 6 1.2.3.4\x00\n", "E - control character in request"),
        (b"Q " + b"x" * 40 + b" 1.2.3.4\n", "E - bad id"),
        (b"Q 7 " + b"1" * 600 + b"\n", "E - line too long"),
        (b"Q 8 ::ffff:192.0.2.10\r\n", "A 8 spam"),
        (b"PING 9\n", "PONG 9 sluice-blocklist/1"),
        (b"Q 10 203.0.113.5\n", "A 10 -"),
    ]
    c = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
    # everything pipelined in one write: answers must come back in order
    c.sendall(b"".join(q for q, _ in cases))
    got = lines_of(c, len(cases))
    bad = 0
    for (q, want), line in zip(cases, got):
        if line != want:
            print("proto: %r -> %r, expected %r" % (q[:40], line, want))
            bad += 1
    c.sendall(b"STATS\n")
    st = lines_of(c, 1)[0]
    if not st.startswith("S entries="):
        print("proto: STATS -> %r" % st)
        bad += 1
    # the connection is still usable after all that
    c.sendall(b"Q 11 192.0.2.1\n")
    line = lines_of(c, 1)[0]
    if line != "A 11 spam":
        print("proto: after errors: %r" % line)
        bad += 1
    print("proto: %d cases, %d failed" % (len(cases) + 2, bad))
    return 1 if bad else 0


def load(port, seconds, out):
    """Always-listed and never-listed addresses: every answer is known
    whatever reload is in progress."""
    conns = [socket.create_connection(("127.0.0.1", int(port)), timeout=10)
             for _ in range(2)]
    rnd = random.Random(4466)
    sent = answered = bad = 0
    end = time.time() + float(seconds)
    expect = [[] for _ in conns]
    bufs = [b"" for _ in conns]
    while time.time() < end or any(expect):
        for i, c in enumerate(conns):
            if time.time() < end and len(expect[i]) < 200:
                out_b = []
                for _ in range(100):
                    if rnd.random() < 0.5:
                        ip, want = "192.0.2.%d" % rnd.randrange(256), "spam"
                    else:
                        ip, want = "203.0.113.%d" % rnd.randrange(256), "-"
                    out_b.append("Q %d %s\n" % (sent, ip))
                    expect[i].append((sent, want))
                    sent += 1
                c.sendall("".join(out_b).encode())
        for i, c in enumerate(conns):
            if not expect[i]:
                continue
            c.settimeout(5)
            try:
                d = c.recv(65536)
            except socket.timeout:
                print("load: no answer in 5 s")
                return 1
            if not d:
                print("load: connection closed")
                return 1
            bufs[i] += d
            *lines, bufs[i] = bufs[i].split(b"\n")
            for ln in lines:
                qid, want = expect[i].pop(0)
                if ln.decode() != "A %d %s" % (qid, want):
                    if bad < 5:
                        print("load: %r, expected %r" % (ln, "A %d %s" % (qid, want)))
                    bad += 1
                answered += 1
    with open(out, "w") as f:
        f.write("sent=%d answered=%d bad=%d\n" % (sent, answered, bad))
    print("load: sent=%d answered=%d bad=%d" % (sent, answered, bad))
    return 1 if bad or answered != sent else 0


def burst(port, n, log):
    import re
    import threading
    n = int(n)
    results = {}

    def one(i):
        listed = i % 2 == 0
        addr = "192.0.2.%d" % (i % 250) if listed else "203.0.113.%d" % (i % 250)
        sender = "burst%d@client.test" % i
        try:
            s = smtplib.SMTP("127.0.0.1", int(port), timeout=30)
            s.ehlo("client.test")
            s.docmd("XFORWARD", "ADDR=%s" % addr)
            s.sendmail(sender, ["box@test.example"],
                       "Subject: burst %d\r\n\r\nhello\r\n" % i)
            s.quit()
            results[i] = (sender, listed, None)
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = (sender, listed, str(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = 0
    text = open(log, errors="replace").read()
    for i, (sender, listed, err) in sorted(results.items()):
        if err:
            print("burst %d: %s" % (i, err))
            bad += 1
            continue
        m = re.search(r"from=<%s> .* symbols=(\S*)" % re.escape(sender), text)
        syms = m.group(1) if m else None
        ok = syms is not None and (("BLOCKLIST_SPAM" in syms) == listed) \
            and "UNAVAILABLE" not in syms
        if not ok:
            print("burst %d: listed=%s symbols=%s" % (i, listed, syms))
            bad += 1
    print("burst: %d messages, %d wrong" % (n, bad))
    return 1 if bad else 0


def main(argv):
    if len(argv) >= 4 and argv[1] == "send":
        return send(argv[2], argv[3], argv[4])
    if len(argv) == 3 and argv[1] == "proto":
        return proto(argv[2])
    if len(argv) == 5 and argv[1] == "load":
        return load(argv[2], argv[3], argv[4])
    if len(argv) == 5 and argv[1] == "burst":
        return burst(argv[2], argv[3], argv[4])
    if len(argv) == 4 and argv[1] == "query":
        return query(argv[2], argv[3])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
