#!/usr/bin/env python3
"""
dns_tool.py - helpers of the dns stage's integration test and benchmark.

Sub-commands:
  send      one message over SMTP to sluiced's ingress, with XFORWARD
            (client ADDR and HELO as the MTA saw them); prints
            "elapsed=SECONDS reply=CODE" and exits 0 when the end of data
            got a 2xx reply.
  blackhole a DNS server that never answers: a bound UDP socket that reads
            and drops (until killed).
  servfail  a DNS server that answers every query with SERVFAIL.
  hash      print the hex digest (md5, sha1, sha256) of a string or file,
            split in 32-character labels when longer than 63, as the dns
            stage forms its SXL names.

Diagnostics: protocol failures print the last reply and exit 1.
SECURITY: binds 127.0.0.1 only; for tests.
"""
import argparse
import hashlib
import socket
import sys
import time


def smtp_reply(f):
    lines = []
    while True:
        ln = f.readline()
        if not ln:
            raise SystemExit("connection closed; got %r" % lines)
        lines.append(ln.decode("latin-1").rstrip("\r\n"))
        if len(ln) < 4 or ln[3:4] != b"-":
            return int(lines[-1][:3]), lines


def cmd_send(a):
    data = open(a.file, "rb").read()
    if not data.endswith(b"\n"):
        data += b"\n"
    body = b"\r\n".join(
        (b"." + ln if ln.startswith(b".") else ln)
        for ln in data[:-1].split(b"\n")) + b"\r\n.\r\n"
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    f = s.makefile("rb")

    def cmd(line, want):
        s.sendall(line.encode() + b"\r\n")
        code, lines = smtp_reply(f)
        if code // 100 != want:
            print("%s -> %s" % (line, lines[-1]), file=sys.stderr)
            raise SystemExit(1)
        return code

    code, _ = smtp_reply(f)
    cmd("EHLO mta.test", 2)
    cmd("XFORWARD ADDR=%s HELO=%s NAME=[UNAVAILABLE] PROTO=ESMTP"
        % (a.addr, a.helo), 2)
    cmd("MAIL FROM:<%s>" % a.sender, 2)
    cmd("RCPT TO:<%s>" % a.rcpt, 2)
    cmd("DATA", 3)
    s.sendall(body)
    if a.abandon:  # the client goes away while the message is in the chain
        s.close()
        print("abandoned")
        return 0
    code, lines = smtp_reply(f)
    elapsed = time.monotonic() - t0
    try:
        s.sendall(b"QUIT\r\n")
        smtp_reply(f)
    except (OSError, SystemExit):
        pass
    print("elapsed=%.3f reply=%d" % (elapsed, code))
    return 0 if code // 100 == 2 else 1


def udp_socket(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    return s


def cmd_blackhole(a):
    s = udp_socket(a.port)
    while True:
        s.recvfrom(4096)  # read and drop


def cmd_servfail(a):
    s = udp_socket(a.port)
    while True:
        q, peer = s.recvfrom(4096)
        if len(q) < 12:
            continue
        # the question echoed, QR + RD + RA, RCODE 2 (SERVFAIL)
        r = q[:2] + bytes([0x80 | (q[2] & 0x01), 0x82]) + q[4:6] + \
            b"\x00\x00\x00\x00\x00\x00" + q[12:]
        s.sendto(r, peer)


def cmd_hash(a):
    data = open(a.file, "rb").read() if a.file else a.text.encode()
    h = hashlib.new(a.alg, data).hexdigest()
    if len(h) > 63:
        h = ".".join(h[i:i + 32] for i in range(0, len(h), 32))
    print(h)
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--addr", default="127.0.0.1")
    s.add_argument("--helo", default="localhost")
    s.add_argument("--sender", default="")
    s.add_argument("--rcpt", default="user@test.example")
    s.add_argument("--timeout", type=float, default=60)
    s.add_argument("--abandon", action="store_true",
                   help="close the connection right after the data")
    s.add_argument("file")
    for name in ("blackhole", "servfail"):
        s = sub.add_parser(name)
        s.add_argument("--port", type=int, required=True)
    s = sub.add_parser("hash")
    s.add_argument("--alg", default="sha1")
    s.add_argument("--file")
    s.add_argument("--text", default="")
    a = p.parse_args()
    return {"send": cmd_send, "blackhole": cmd_blackhole,
            "servfail": cmd_servfail, "hash": cmd_hash}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
