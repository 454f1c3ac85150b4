#!/usr/bin/env python3
"""
bad_packets.py - hostile milter clients against sluiced's milter socket:
wrong lengths, unknown commands, oversize packets, commands out of order,
truncated packets, garbage.  Each connection must be closed by the filter
(or answered and then closed), and after every attack a well-formed
option negotiation must still be answered: the daemon keeps serving.

Usage: bad_packets.py PORT.  Exit 0 when all is well, 1 otherwise.
"""
import socket
import struct
import sys
import time

PORT = int(sys.argv[1])
OPTNEG = b"O" + struct.pack(">III", 6, 0x1FF, 0x1FFFFF)


def pkt(cmd, data=b""):
    return struct.pack(">I", len(cmd) + len(data)) + cmd + data


def conn():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    return s


def closed_soon(s, secs=10):
    """True if the peer closes (EOF or reset) within secs, reading all."""
    s.settimeout(secs)
    end = time.time() + secs
    try:
        while time.time() < end:
            d = s.recv(65536)
            if not d:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def healthy():
    """A well-formed negotiation gets an 'O' reply."""
    s = conn()
    s.sendall(pkt(OPTNEG[:1], OPTNEG[1:]))
    s.settimeout(10)
    hdr = b""
    while len(hdr) < 5:
        d = s.recv(5 - len(hdr))
        if not d:
            return False
        hdr += d
    s.close()
    return hdr[4:5] == b"O"


CONNECT = pkt(b"C", b"probe.example\0" + b"4" + struct.pack(">H", 25) +
              b"192.0.2.99\0")

# libmilter answers an out-of-order command by ignoring it and falling
# back to the HELO state, where a HELO is valid again.
HELO = pkt(b"H", b"probe.example\0")

# (name, bytes, probe): the filter must close the connection, or - where
# libmilter by design ignores a command that is out of order - still be in
# step: `probe` then gets its normal reply.
ATTACKS = [
    ("unknown command", pkt(OPTNEG[:1], OPTNEG[1:]) + pkt(b"Z", b"junk"),
     None),
    ("zero length", pkt(OPTNEG[:1], OPTNEG[1:]) + b"\0\0\0\0C", None),
    ("negative length", pkt(OPTNEG[:1], OPTNEG[1:]) + b"\xff\xff\xff\xffO",
     (HELO, None)),
    ("oversize packet", pkt(OPTNEG[:1], OPTNEG[1:]) +
     struct.pack(">I", 8 * 1024 * 1024) + b"B" + b"x" * 65536, None),
    ("short negotiation", pkt(b"O", b"\0\0"), None),
    ("old version", pkt(b"O", struct.pack(">III", 1, 0, 0)), None),
    ("connect without negotiation", CONNECT, (HELO, None)),
    ("connect bad family", pkt(OPTNEG[:1], OPTNEG[1:]) +
     pkt(b"C", b"host\0" + b"Q" + struct.pack(">H", 25) + b"x\0"), None),
    ("connect no terminator", pkt(OPTNEG[:1], OPTNEG[1:]) +
     pkt(b"C", b"host\0" + b"4" + struct.pack(">H", 25) + b"1.2.3.4"), None),
    ("header without NUL", pkt(OPTNEG[:1], OPTNEG[1:]) + CONNECT +
     pkt(b"M", b"<a@b>\0") + pkt(b"R", b"<c@d>\0") + pkt(b"L", b"Subject"),
     None),
    ("garbage", b"GET / HTTP/1.0\r\n\r\n" * 10, None),
    ("truncated then closed", pkt(OPTNEG[:1], OPTNEG[1:]) + b"\0\0\1\0M<a",
     None),
]


def replies(data):
    """The command bytes of the reply packets in data."""
    out, i = [], 0
    while i + 5 <= len(data):
        n = struct.unpack(">I", data[i:i + 4])[0]
        out.append(data[i + 4:i + 5])
        i += 4 + n
    return out


def in_step(s, probe, want):
    """Still speaking milter: the probe gets a reply (`want`, if given)."""
    s.settimeout(10)
    try:
        s.sendall(probe)
        buf = b""
        end = time.time() + 10
        while time.time() < end:
            d = s.recv(65536)
            if not d:
                return False
            buf += d
            r = replies(buf)
            if r and (want is None or r[-1] == want):
                return True
    except OSError:
        return False
    return False


def main():
    fails = 0
    if not healthy():
        print("bad_packets: filter not answering a good negotiation at start")
        return 1
    for name, data, probe in ATTACKS:
        s = conn()
        try:
            s.sendall(data)
            if name == "truncated then closed":
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if probe is None:
            ok = closed_soon(s)
            how = "closed"
        else:
            time.sleep(0.3)
            s.setblocking(False)
            try:
                s.recv(65536)  # the negotiation reply, if any
            except (BlockingIOError, OSError):
                pass
            s.setblocking(True)
            ok = in_step(s, probe[0], probe[1])
            how = "ignored, in step"
        s.close()
        alive = healthy()
        print("bad_packets: %-28s %s=%s serving=%s" % (name, how, ok, alive))
        if not ok or not alive:
            fails += 1
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
