#!/usr/bin/env python3
"""
mailtool.py - the integration tests' mail client and mailbox checker.

Interface (sub-commands; see --help of each):
  plan    write a manifest: one line per message, "ID<TAB>PATH[<TAB>HEADER]",
          from corpus files (sorted, optional offset/limit, optional extra
          header such as "X-Sluice-Test: crash").
  send    submit every message of a manifest over SMTP (or LMTP) to
          HOST:PORT on a few parallel connections; each message gets its own
          envelope recipient m<ID>@DOMAIN so the checker can tell which
          arrived.  Optional pacing (--rate) for streams under faults.
  check   compare a Maildir against a manifest: every message exactly once,
          the delivered bytes equal to the original apart from the header
          fields the path adds on top (counted exactly: --prefix).
  wait    wait until a Maildir holds at least N messages (or timeout).

The wire form of a message: the file's LF-terminated lines, each sent with
CRLF, dot-stuffed; a missing final newline is added.  Postfix stores and
virtual(8) writes LF lines, so the delivered body must equal the file's
bytes line for line.

Diagnostics: every failure is printed on stderr with the message id and a
short diff; exit status 0 when all is well, 1 otherwise, 2 on usage errors.
"""
import argparse
import glob
import os
import socket
import sys
import threading
import time


def wire_data(raw, extra_header=None):
    """The DATA payload for raw file bytes: CRLF lines, dot-stuffed."""
    if extra_header:
        raw = extra_header.encode() + b"\n" + raw
    if not raw.endswith(b"\n"):
        raw += b"\n"
    lines = raw[:-1].split(b"\n")
    out = []
    for ln in lines:
        if ln.startswith(b"."):
            ln = b"." + ln
        out.append(ln)
    return b"\r\n".join(out) + b"\r\n.\r\n"


def expected_bytes(raw, extra_header=None):
    if extra_header:
        raw = extra_header.encode() + b"\n" + raw
    if not raw.endswith(b"\n"):
        raw += b"\n"
    return raw


class SmtpError(Exception):
    def __init__(self, stage, code, text, fresh=False):
        Exception.__init__(self, "%s: %s %s" % (stage, code, text))
        self.stage, self.code, self.text, self.fresh = stage, code, text, fresh


class Client:
    """A minimal SMTP/LMTP client over one connection."""

    def __init__(self, host, port, helo="client.test", lmtp=False,
                 timeout=120):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.lmtp = lmtp
        self.stage = "banner"
        code, text = self.reply()
        if code != 220:
            raise SmtpError("banner", code, text, fresh=True)
        self.cmd(("LHLO " if lmtp else "EHLO ") + helo, 250, "ehlo")

    def readline(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise SmtpError("read", 0, "connection closed by server")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("latin-1")

    def reply(self):
        lines = []
        while True:
            ln = self.readline()
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                break
        try:
            code = int(lines[-1][:3])
        except ValueError:
            code = 0
        return code, " | ".join(lines)

    def cmd(self, line, want, stage):
        self.stage = stage
        self.sock.sendall(line.encode("latin-1") + b"\r\n")
        code, text = self.reply()
        if code != want:
            raise SmtpError(stage, code, text)
        return text

    def send(self, sender, rcpts, data):
        """One transaction; LMTP gives one reply per recipient."""
        self.cmd("MAIL FROM:<%s>" % sender, 250, "mail")
        for r in rcpts:
            self.cmd("RCPT TO:<%s>" % r, 250, "rcpt")
        self.cmd("DATA", 354, "data")
        self.stage = "dot"
        self.sock.sendall(data)
        for _ in (rcpts if self.lmtp else [None]):
            code, text = self.reply()
            if code != 250:
                raise SmtpError("dot", code, text)

    def quit(self):
        try:
            self.sock.sendall(b"QUIT\r\n")
            self.reply()
        except Exception:
            pass
        self.sock.close()


def read_manifest(path):
    items = []
    with open(path) as fp:
        for ln in fp:
            ln = ln.rstrip("\n")
            if not ln:
                continue
            parts = ln.split("\t")
            items.append((parts[0], parts[1], parts[2] if len(parts) > 2
                          and parts[2] else None))
    return items


def cmd_plan(a):
    files = []
    for d in a.corpus:
        if os.path.isdir(d):
            files += [f for f in glob.glob(os.path.join(d, "**", "*"),
                                           recursive=True)
                      if os.path.isfile(f)]
        else:
            files.append(d)
    files.sort()
    files = files[a.offset:]
    if a.limit:
        files = files[:a.limit]
    if not files:
        print("plan: no files in %s" % a.corpus, file=sys.stderr)
        return 1
    with open(a.out, "a") as fp:
        for i, f in enumerate(files):
            fp.write("%s%05d\t%s\t%s\n" % (a.prefix, a.start + i,
                                           os.path.abspath(f),
                                           a.header or ""))
    return 0


def cmd_send(a):
    items = read_manifest(a.manifest)
    lock = threading.Lock()
    queue = list(items)
    queue.reverse()
    stats = {"sent": 0, "failed": 0, "retries": 0, "reconnects": 0}
    lat = []
    errors = []
    interval = 1.0 / a.rate if a.rate else 0.0
    t0 = time.time()
    next_slot = [t0]

    def take():
        with lock:
            if not queue:
                return None
            if interval:
                now = time.time()
                wait = next_slot[0] - now
                next_slot[0] = max(next_slot[0], now) + interval
            else:
                wait = 0
            it = queue.pop()
        if wait > 0:
            time.sleep(wait)
        return it

    def worker():
        cli = None
        while True:
            it = take()
            if it is None:
                break
            mid, path, hdr = it
            with open(path, "rb") as fp:
                data = wire_data(fp.read(), hdr)
            rcpt = "m%s@%s" % (mid, a.domain)
            tries = 0
            while True:
                reused = cli is not None
                try:
                    if cli is None:
                        cli = Client(a.host, a.port, lmtp=a.lmtp)
                    ts = time.time()
                    cli.send(a.sender, [rcpt], data)
                    with lock:
                        lat.append(time.time() - ts)
                        stats["sent"] += 1
                    if a.per_conn and stats["sent"] % a.per_conn == 0:
                        cli.quit()
                        cli = None
                    break
                except (OSError, SmtpError) as e:
                    stage = cli.stage if cli is not None else "connect"
                    if cli is not None:
                        try:
                            cli.sock.close()
                        except OSError:
                            pass
                    cli = None
                    # A cached connection closed or 421'd before the
                    # transaction started is not a failure (Postfix's
                    # smtp client reconnects too).
                    early = stage == "mail" and (
                        not isinstance(e, SmtpError) or e.code in (0, 421))
                    if reused and early:
                        with lock:
                            stats["reconnects"] += 1
                        continue
                    tries += 1
                    with lock:
                        errors.append("%s: %s" % (mid, e))
                    if tries > a.retries:
                        with lock:
                            stats["failed"] += 1
                        break
                    with lock:
                        stats["retries"] += 1
                    time.sleep(a.retry_delay)
        if cli is not None:
            cli.quit()

    th = [threading.Thread(target=worker) for _ in range(a.conns)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    dt = time.time() - t0
    lat.sort()

    def pct(p):
        if not lat:
            return 0.0
        return lat[min(len(lat) - 1, int(len(lat) * p))] * 1000

    print("send: %d messages sent, %d failed, %d retries, %d reconnects in "
          "%.2fs (%.1f msg/s); latency p50 %.2fms p99 %.2fms" %
          (stats["sent"], stats["failed"], stats["retries"],
           stats["reconnects"], dt, stats["sent"] / dt if dt else 0,
           pct(0.50), pct(0.99)))
    for e in errors[:20]:
        print("send: error: %s" % e, file=sys.stderr)
    if len(errors) > 20:
        print("send: ... %d more errors" % (len(errors) - 20),
              file=sys.stderr)
    if a.latency_out:
        with open(a.latency_out, "w") as fp:
            for v in lat:
                fp.write("%.6f\n" % v)
    if stats["failed"] or (a.strict and errors):
        return 1
    return 0


def split_fields(data):
    """Header fields at the top of data: list of (name, raw bytes), rest."""
    fields = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            break
        line = data[pos:end + 1]
        if line in (b"\n", b"\r\n") or line[:1] in (b" ", b"\t"):
            break
        colon = line.find(b":")
        if colon <= 0:
            break
        stop = end + 1
        while stop < len(data) and data[stop:stop + 1] in (b" ", b"\t"):
            nxt = data.find(b"\n", stop)
            stop = len(data) if nxt < 0 else nxt + 1
        fields.append((line[:colon].decode("latin-1").strip(),
                       data[pos:stop]))
        pos = stop
    return fields, pos


def first_diff(a, b):
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def cmd_check(a):
    items = read_manifest(a.manifest)
    want = {mid: (path, hdr) for mid, path, hdr in items}
    prefix = [p.strip().lower() for p in a.prefix.split(",") if p.strip()]
    seen = {}
    problems = []
    unexpected = []
    files = []
    for sub in ("new", "cur"):
        d = os.path.join(a.maildir, sub)
        if os.path.isdir(d):
            files += [os.path.join(d, f) for f in os.listdir(d)]
    for f in sorted(files):
        with open(f, "rb") as fp:
            got = fp.read()
        fields, _ = split_fields(got)
        mid = None
        for name, raw in fields:
            if name.lower() == "delivered-to":
                addr = raw.split(b":", 1)[1].strip().decode("latin-1")
                local = addr.split("@", 1)[0]
                if local.startswith("m"):
                    mid = local[1:]
                break
        if mid is None or mid not in want:
            unexpected.append((f, got[:300]))
            continue
        seen[mid] = seen.get(mid, 0) + 1
        if seen[mid] > 1:
            continue
        path, hdr = want[mid]
        with open(path, "rb") as fp:
            orig = expected_bytes(fp.read(), hdr)
        # Take the added fields off the top, exactly as many of each kind
        # as --prefix says, in any order.
        todo = list(prefix)
        pos = 0
        added = []
        for name, raw in fields:
            if name.lower() in todo:
                todo.remove(name.lower())
                added.append(raw)
                pos += len(raw)
            else:
                break
        rest = got[pos:]
        if todo:
            problems.append("%s (%s): added header fields missing: %s; top "
                            "of delivered message:\n%s" %
                            (mid, path, ",".join(todo),
                             got[:600].decode("latin-1")))
        elif rest != orig:
            i = first_diff(rest, orig)
            problems.append(
                "%s (%s): content differs at byte %d (delivered %d bytes "
                "after %d added, original %d)\n  delivered: %r\n  original:"
                "  %r" % (mid, path, i, len(rest), len(added), len(orig),
                          rest[max(0, i - 60):i + 60],
                          orig[max(0, i - 60):i + 60]))
        elif a.header_check:
            hc_name, _, hc_sub = a.header_check.partition(":")
            ok = any(n.lower() == hc_name.lower() and
                     hc_sub.strip().encode() in r for n, r in
                     (split_fields(b"".join(added))[0]))
            if not ok:
                problems.append("%s: no %s header containing %r" %
                                (mid, hc_name, hc_sub.strip()))
    missing = [m for m in want if m not in seen]
    dups = {m: n for m, n in seen.items() if n > 1}
    print("check: %d expected, %d delivered files, %d distinct, %d missing, "
          "%d duplicated (%d extra copies), %d differ, %d unexpected" %
          (len(want), len(files), len(seen), len(missing), len(dups),
           sum(n - 1 for n in dups.values()), len(problems),
           len(unexpected)))
    for m in missing[:20]:
        print("check: missing %s (%s)" % (m, want[m][0]), file=sys.stderr)
    for m, n in list(dups.items())[:20]:
        print("check: duplicated %s x%d" % (m, n), file=sys.stderr)
    for p in problems[:10]:
        print("check: %s" % p, file=sys.stderr)
    for f, head in unexpected[:5]:
        print("check: unexpected %s:\n%s" % (f, head.decode("latin-1")),
              file=sys.stderr)
    fail = missing or problems or unexpected or (dups and not a.allow_dups)
    return 1 if fail else 0


def count_maildir(d):
    n = 0
    for sub in ("new", "cur"):
        p = os.path.join(d, sub)
        if os.path.isdir(p):
            n += len(os.listdir(p))
    return n


def cmd_wait(a):
    deadline = time.time() + a.timeout
    while True:
        n = count_maildir(a.maildir)
        if n >= a.count:
            return 0
        if time.time() > deadline:
            print("wait: %d of %d messages after %ss" %
                  (n, a.count, a.timeout), file=sys.stderr)
            return 1
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("plan")
    p.add_argument("--out", required=True)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--prefix", default="")
    p.add_argument("--header")
    p.add_argument("corpus", nargs="+")
    p.set_defaults(fn=cmd_plan)
    p = sub.add_parser("send")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--lmtp", action="store_true")
    p.add_argument("--conns", type=int, default=4)
    p.add_argument("--rate", type=float, default=0, help="messages/s")
    p.add_argument("--per-conn", type=int, default=0,
                   help="reconnect after this many messages")
    p.add_argument("--retries", type=int, default=0)
    p.add_argument("--retry-delay", type=float, default=0.5)
    p.add_argument("--strict", action="store_true",
                   help="fail on any error, even if a retry succeeded")
    p.add_argument("--sender", default="sender@sender.test")
    p.add_argument("--domain", default="test.example")
    p.add_argument("--latency-out")
    p.add_argument("manifest")
    p.set_defaults(fn=cmd_send)
    p = sub.add_parser("check")
    p.add_argument("--maildir", required=True)
    p.add_argument("--prefix", default="",
                   help="comma list of header fields added on top")
    p.add_argument("--allow-dups", action="store_true")
    p.add_argument("--header-check",
                   help="NAME:SUBSTRING that one added field must carry")
    p.add_argument("manifest")
    p.set_defaults(fn=cmd_check)
    p = sub.add_parser("wait")
    p.add_argument("--maildir", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--timeout", type=float, default=60)
    p.set_defaults(fn=cmd_wait)
    a = ap.parse_args()
    sys.exit(a.fn(a))


if __name__ == "__main__":
    main()
