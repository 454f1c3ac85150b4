#!/usr/bin/env python3
"""accuracy_combined.py - k-fold cross-validation of the whole score: the
shipped rules (rules/*.rules through the heuristic stage) plus Bayes, the
network checks off.  bench/accuracy.sh runs it after the Bayes-only driver.

For each fold, a fresh Bayes database learns the other folds only
(`sluicectl learn -B`), then `sluicectl scan --json --without dns,blocklist`
scans the fold with a copy of conf.d whose bayes stage reads that
database.  Every message is therefore scored by a table that never learned
it.  The score is the one the policy stage sees (all symbols); flagged
means score >= tag_score of conf.d/70-policy.conf (the [SPAM] tag),
quarantined >= quarantine_score.

Printed: spam recall and ham flagged at the default thresholds; the spam
recall reachable at 0.1 % and 0.5 % of all ham flagged (the threshold just
above the ham score that many ham reach); the same for the rules alone
(score minus the BAYES_* symbol) and for alternative Bayes band weights
(--weights), each recomputed from the same held-out scans.  With
--select, the weight table is chosen on k-1 folds' held-out results and
measured on the remaining fold, in turn (nested, so the figure printed
for the selection is itself held-out).  Asserts nothing.

Usage: accuracy_combined.py [-k FOLDS] [-r SEED] [-b] [--select]
           [--dump FILE] [--sluicectl PATH] [--plugins DIR] [--conf DIR] CORPUS
Corpus: ham/ and spam/ (hard ham: a path with "hard" in it, or hard_ham/).
"""
import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

BANDS = ["BAYES_00", "BAYES_05", "BAYES_20", "BAYES_40", "BAYES_50",
         "BAYES_60", "BAYES_80", "BAYES_95", "BAYES_99"]
# Band weight tables compared (score of BAYES_00 .. BAYES_99): the shape
# of the stage's first defaults (-3 .. 4) scaled, i.e. one free parameter,
# the weight of Bayes against the rules.  x1.25 is what conf.d ships now
# (chosen with --select on folds of consecutive names: README, "Accuracy").
BASE = [-3, -2, -1, 0, 0, 1, 2, 3, 4]
TABLES = {"x%g" % f: [round(w * f, 2) for w in BASE]
          for f in (1, 1.25, 1.5, 1.75, 2)}
# What --select maximises: spam recall at tag_score minus COST_FP times the
# share of ham flagged there (a false positive weighs as much as 100
# missed spams), ties broken by the recall at <= 0.5 % of ham flagged.
COST_FP = 100


def corpus_messages(root):
    msgs = []
    for top in sorted(os.listdir(root)):
        cls = ("spam" if "spam" in top else "hard" if "hard" in top
               else "ham" if "ham" in top else None)
        if cls is None or top.startswith("."):
            continue
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in files:
                if f.startswith("."):
                    continue
                p = os.path.join(d, f)
                c = cls
                if c == "ham" and "hard" in os.path.relpath(p, root):
                    c = "hard"
                msgs.append((p, c))
    msgs.sort()
    return msgs


def conf_value(confdir, fname, key, default):
    try:
        with open(os.path.join(confdir, fname)) as f:
            for line in f:
                m = re.match(r"\s*%s\s+([-0-9.]+)" % key, line)
                if m:
                    return float(m.group(1))
    except OSError:
        pass
    return default


def fold_conf(confdir, dest, db):
    os.makedirs(dest)
    for f in os.listdir(confdir):
        if f.endswith(".conf"):
            shutil.copy(os.path.join(confdir, f), dest)
    path = os.path.join(dest, "50-bayes.conf")
    with open(path) as f:
        text = f.read()
    text = re.sub(r"(?m)^database .*$", "database " + db, text)
    text = re.sub(r"(?m)^enabled .*$", "enabled yes", text)
    with open(path, "w") as f:
        f.write(text)


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, **kw)
    return r


def scan_fold(args, tmp, f, train, test):
    db = os.path.join(tmp, "fold%d.db" % f)
    for cls in ("spam", "ham"):
        files = [p for p, c in train if (c == "spam") == (cls == "spam")]
        r = run([args.sluicectl, "learn", "-B", db, cls] + files)
        if r.returncode != 0:
            sys.exit("learn failed: %s" % r.stderr)
    conf = os.path.join(tmp, "conf%d" % f)
    fold_conf(args.conf, conf, db)
    cmd = [args.sluicectl, "scan", "--json", "--without", args.without,
           "-c", conf] + (["-P", args.plugins] if args.plugins else [])
    r = run(cmd + [p for p, _ in test])
    out = {}
    for line in r.stdout.splitlines():
        o = json.loads(line)
        if "error" in o:
            sys.exit("scan error: %s: %s" % (o["file"], o["error"]))
        bayes = None
        bscore = 0.0
        for s in o["symbols"]:
            if s["name"] in BANDS:  # not meta rules named BAYES_...
                bayes, bscore = s["name"], s["score"]
        out[o["file"]] = (o["score"], o["score"] - bscore, bayes,
                          [(s["name"], s["score"]) for s in o["symbols"]])
    if len(out) != len(test):
        sys.exit("fold %d: %d of %d scanned; stderr: %s" %
                 (f, len(out), len(test), r.stderr[-2000:]))
    return out


def recall_at(scores, rate):
    ham = sorted((s for s, c in scores if c != "spam"), reverse=True)
    spam = [s for s, c in scores if c == "spam"]
    allowed = int(rate * len(ham) + 1e-9)
    thr = ham[allowed] if allowed < len(ham) else float("-inf")
    return sum(1 for s in spam if s > thr) / max(1, len(spam)), thr


def figures(scores, tag, quar):
    n = {"spam": 0, "ham": 0, "hard": 0}
    fl = {"spam": 0, "ham": 0, "hard": 0}
    q = {"spam": 0, "ham": 0, "hard": 0}
    for s, c in scores:
        n[c] += 1
        fl[c] += s >= tag
        q[c] += s >= quar
    r1, t1 = recall_at(scores, 0.001)
    r5, t5 = recall_at(scores, 0.005)
    return n, fl, q, (r1, t1), (r5, t5)


def pct(a, b):
    return 100.0 * a / b if b else 0.0


def show(name, scores, tag, quar):
    n, fl, q, (r1, t1), (r5, t5) = figures(scores, tag, quar)
    line = ("%-22s recall %6.2f %%  ham flagged %5.2f %% (%d)" %
            (name, pct(fl["spam"], n["spam"]), pct(fl["ham"], n["ham"]),
             fl["ham"]))
    if n["hard"]:
        line += "  hard ham %5.2f %% (%d)" % (pct(fl["hard"], n["hard"]),
                                             fl["hard"])
    line += ("  | quarantined: spam %5.1f %%, ham %d  | recall at 0.1 %% FP "
             "%6.2f %% (score > %.1f), at 0.5 %% FP %6.2f %% (> %.1f)" %
             (pct(q["spam"], n["spam"]), q["ham"] + q["hard"], 100 * r1, t1,
              100 * r5, t5))
    print(line)
    return n, fl, r1, r5


def rescore(res, table):
    out = []
    for p, c, total, rules, band in res:
        out.append((rules + (table[BANDS.index(band)] if band else 0.0), c))
    return out


def objective(scores, tag):
    n, fl, q, (r1, _), (r5, _) = figures(scores, tag, 1e9)
    rec = fl["spam"] / max(1, n["spam"])
    fp = (fl["ham"] + fl["hard"]) / max(1, n["ham"] + n["hard"])
    return (rec - COST_FP * fp, r5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("-r", "--seed", type=int, default=1)
    ap.add_argument("-b", "--blocked", action="store_true",
                    help="folds of consecutive names instead of shuffled")
    ap.add_argument("--select", action="store_true",
                    help="nested choice of the band weights (held out)")
    ap.add_argument("--sluicectl", default="build/tools/sluicectl")
    ap.add_argument("--plugins", default="build/plugins.d")
    ap.add_argument("--conf", default="conf.d")
    ap.add_argument("--without", default="dns,blocklist")
    ap.add_argument("--dump", metavar="FILE",
                    help="write one JSON line per message (class, fold, "
                    "score, symbols) for study")
    ap.add_argument("corpus")
    args = ap.parse_args()
    dump = open(args.dump, "w") if args.dump else None

    msgs = corpus_messages(args.corpus)
    if not msgs:
        sys.exit("no messages under %s" % args.corpus)
    tag = conf_value(args.conf, "70-policy.conf", "tag_score", 5.0)
    quar = conf_value(args.conf, "70-policy.conf", "quarantine_score", 15.0)
    rng = random.Random(args.seed)
    if not args.blocked:
        rng.shuffle(msgs)
    fold = {}
    for cls in ("spam", "ham", "hard"):
        mine = [m for m in msgs if m[1] == cls]
        for i, m in enumerate(mine):
            fold[m[0]] = (i * args.k // len(mine) if args.blocked
                          else i % args.k)
    tmp = tempfile.mkdtemp(prefix="sluice-acc-")
    res = []  # (path, class, total, rules, band, fold)
    t0 = time.time()
    try:
        for f in range(args.k):
            train = [m for m in msgs if fold[m[0]] != f]
            test = [m for m in msgs if fold[m[0]] == f]
            out = scan_fold(args, tmp, f, train, test)
            for p, c in test:
                total, rules, band, syms = out[p]
                res.append((p, c, total, rules, band, f))
                if dump:
                    dump.write(json.dumps({"file": p, "class": c, "fold": f,
                                           "score": total,
                                           "symbols": syms}) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    el = time.time() - t0
    nspam = sum(1 for m in msgs if m[1] == "spam")
    print("corpus %s: %d spam, %d easy ham, %d hard ham; %d folds %s; "
          "rules as shipped + Bayes, without %s; tag_score %g, "
          "quarantine_score %g; %.0f s" %
          (args.corpus, nspam, sum(1 for m in msgs if m[1] == "ham"),
           sum(1 for m in msgs if m[1] == "hard"), args.k,
           "of consecutive names" if args.blocked
           else "shuffled with seed %d" % args.seed,
           args.without, tag, quar, el))
    base = [(r[0], r[1], r[2], r[3], r[4]) for r in res]
    show("rules + Bayes (conf.d)", [(r[2], r[1]) for r in res], tag, quar)
    show("rules alone", [(r[3], r[1]) for r in res], tag, quar)
    untrained = sum(1 for r in res if r[4] is None)
    bands = {}
    for r in res:
        bands.setdefault(r[1], [0] * (len(BANDS) + 1))
        bands[r[1]][BANDS.index(r[4]) if r[4] else len(BANDS)] += 1
    print("bands       " + " ".join("%5s" % b[6:] for b in BANDS) + "  none")
    for c in ("spam", "ham", "hard"):
        if c in bands:
            print("%-10s " % c + " ".join("%5d" % x for x in bands[c]))
    if untrained:
        print("(%d messages without a Bayes symbol)" % untrained)
    sp = sorted(r[2] for r in res if r[1] == "spam")
    if sp:
        print("spam scores: median %.1f, 90th percentile %.1f, highest %.1f"
              % (sp[len(sp) // 2], sp[int(len(sp) * 0.9)], sp[-1]))
    for name, table in TABLES.items():
        show("weights %s" % name, rescore(base, table), tag, quar)
    if args.select:
        # nested: for each fold, pick the table best on the other folds'
        # held-out results, then score this fold with it
        picked = []
        outer = []
        for f in range(args.k):
            others = [r[:5] for r in res if r[5] != f]
            best = max(TABLES, key=lambda t: objective(
                rescore(others, TABLES[t]), tag))
            picked.append(best)
            outer += rescore([r[:5] for r in res if r[5] == f], TABLES[best])
        print("nested selection picked: %s" % ", ".join(picked))
        show("selected (held out)", outer, tag, quar)


if __name__ == "__main__":
    main()
