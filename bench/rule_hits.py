#!/usr/bin/env python3
"""rule_hits.py - how often each rule hits spam and ham of a corpus laid
out as ham/ and spam/ (hard ham: a path with "hard" in it): the figures a
rule writer needs to see that a rule catches spam without hitting ham.

Runs `sluicectl scan --json --without dns,blocklist,bayes` over the corpus
with the rules of --conf (conf.d) and prints, per symbol: its weight,
the share of spam and of ham it hit, and S/O (spam hits over all hits,
1.0 = spam only).  Rules that hit no message are listed at the end.
Asserts nothing; a rule's weight is not fitted here.

Usage: rule_hits.py [--sluicectl PATH] [--plugins DIR] [--conf DIR]
           [--without STAGES] [--sort so|spam|ham|name] [--rules FILE...] CORPUS
"""
import argparse
import json
import os
import re
import subprocess
import sys


def corpus(root):
    out = []
    for d, _, files in os.walk(root):
        top = os.path.relpath(d, root).split(os.sep)[0]
        cls = ("hard" if "hard" in d else "spam" if "spam" in top
               else "ham" if "ham" in top else None)
        if cls is None:
            continue
        out += [(os.path.join(d, f), cls) for f in sorted(files)
                if not f.startswith(".")]
    return out


def rule_names(files):
    names = set()
    for f in files:
        for line in open(f, errors="replace"):
            m = re.match(r"\s*(header|body|rawbody|full|uri|eval|meta)\s+"
                         r"([A-Z0-9_]+)\s", line)
            if m and not m.group(2).startswith("__"):
                names.add(m.group(2))
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluicectl", default="build/tools/sluicectl")
    ap.add_argument("--plugins", default="build/plugins.d")
    ap.add_argument("--conf", default="conf.d")
    ap.add_argument("--without", default="dns,blocklist,bayes")
    ap.add_argument("--sort", default="so",
                    choices=["so", "spam", "ham", "name"])
    ap.add_argument("--rules", nargs="*", default=None,
                    help="rule files whose never-hit rules to list "
                    "(default rules/*.rules)")
    ap.add_argument("corpus")
    a = ap.parse_args()
    msgs = corpus(a.corpus)
    if not msgs:
        sys.exit("no messages under %s" % a.corpus)
    cls = dict(msgs)
    n = {"spam": 0, "ham": 0, "hard": 0}
    for _, c in msgs:
        n[c] += 1
    r = subprocess.run([a.sluicectl, "scan", "--json", "--without",
                        a.without, "-c", a.conf, "-P", a.plugins] +
                       [p for p, _ in msgs], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    hits, weight = {}, {}
    seen = 0
    for line in r.stdout.splitlines():
        o = json.loads(line)
        if "error" in o:
            sys.exit("scan error: %s: %s" % (o["file"], o["error"]))
        seen += 1
        c = cls[o["file"]]
        for s in o["symbols"]:
            h = hits.setdefault(s["name"], {"spam": 0, "ham": 0, "hard": 0})
            h[c] += 1
            weight[s["name"]] = s["score"]
    if seen != len(msgs):
        sys.exit("%d of %d scanned: %s" % (seen, len(msgs), r.stderr[-2000:]))

    def pct(k, c):
        return 100.0 * hits[k][c] / n[c] if n[c] else 0.0

    def so(k):
        s, h = pct(k, "spam"), pct(k, "ham") + pct(k, "hard")
        return s / (s + h) if s + h else 0.0
    key = {"so": lambda k: (-so(k), -pct(k, "spam")),
           "spam": lambda k: -pct(k, "spam"),
           "ham": lambda k: -pct(k, "ham"), "name": lambda k: k}[a.sort]
    print("%d spam, %d ham, %d hard ham; without %s" %
          (n["spam"], n["ham"], n["hard"], a.without))
    print("%-26s %6s %7s %7s %7s %5s" %
          ("symbol", "weight", "spam%", "ham%", "hard%", "S/O"))
    for k in sorted(hits, key=key):
        print("%-26s %6.2f %7.2f %7.2f %7.2f %5.2f" %
              (k, weight[k], pct(k, "spam"), pct(k, "ham"), pct(k, "hard"),
               so(k)))
    files = a.rules
    if files is None:
        d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                         "rules")
        files = [os.path.join(d, f) for f in sorted(os.listdir(d))
                 if f.endswith(".rules")]
    never = sorted(rule_names(files) - set(hits))
    if never:
        print("never hit (%d): %s" % (len(never), " ".join(never)))


if __name__ == "__main__":
    main()
