#!/usr/bin/env python3
"""fit_weights.py - adjust rule and Bayes band weights on held-out scans,
within limits set by the rule writer, and say how well the result does on
folds it was not fitted on.

Input: the --dump of bench/accuracy_combined.py (one JSON line per message:
class, fold, score, symbols with the weights they carried).  Every message
there was scored by a Bayes table that never learned it, so the Bayes band
of each line is a held-out band.

Model: the heuristic stage's own probability, p = 1 / (1 + e^-((score -
tag) / scale)), with tag_score (conf.d/70-policy.conf) and the stage's
scale (conf.d/60-heuristic.conf).  The weights minimise the log loss of
that p, ham counted --ham-cost times (a false positive costs more than a
missed spam), plus --l2 times the squared distance of each weight from
the writer's weight (the prior).  Each fitted weight stays within
[w/2, 2w] of the writer's w (sign kept; a rule at most --max), so the corpus can
scale a rule's trust, never turn a spam sign into a ham sign or make one
rule decide alone.  Symbols that hit fewer than --min-hits messages keep
the writer's weight; symbols the rules do not define (MIME_*, the
blocklist's) are left as they are.

Printed: per fold, the figures of weights fitted on the other folds (the
held-out result of the whole procedure), then the weights fitted on all
folds beside the writer's.  With --apply, those weights are written into
rules/*.rules (the WEIGHT column of each rule line) and the `score` lines
of conf.d/50-bayes.conf.  Asserts nothing.

Usage: fit_weights.py [--ham-cost C] [--l2 L] [--min-hits N] [--max M]
           [--apply] [--rules DIR] [--conf DIR] DUMP.jsonl
"""
import argparse
import glob
import json
import math
import os
import re
import sys

BANDS = ["BAYES_00", "BAYES_05", "BAYES_20", "BAYES_40", "BAYES_50",
         "BAYES_60", "BAYES_80", "BAYES_95", "BAYES_99"]
RULE_LINE = re.compile(r"^(\s*(?:header|body|rawbody|full|uri|eval|meta)\s+"
                       r"([A-Za-z0-9_]+)\s+)(-?[0-9.]+)(\s.*)$", re.S)


def conf_value(path, key, default):
    try:
        for line in open(path):
            f = line.split("#")[0].split()
            if len(f) >= 2 and f[0] == key:
                return float(f[1])
    except OSError:
        pass
    return default


def rule_weights(rules_dir):
    w = {}
    for path in sorted(glob.glob(os.path.join(rules_dir, "*.rules"))):
        for line in open(path):
            m = RULE_LINE.match(line)
            if m and not m.group(2).startswith("__"):
                w[m.group(2)] = float(m.group(3))
    return w


def bayes_weights(path):
    w = {}
    for line in open(path):
        f = line.split("#")[0].strip()
        if f.startswith("score "):
            for item in f[6:].split(","):
                k, v = item.split()
                w[k] = float(v)
    return w


def bounds(w0, cap):
    if w0 > 0:
        return w0 / 2, min(2 * w0, cap)
    if w0 < 0:
        return max(2 * w0, -cap), w0 / 2
    return 0.0, 0.0


class Model:
    def __init__(self, msgs, prior, free, tag, scale, ham_cost, l2, cap):
        self.prior, self.free = prior, free
        self.tag, self.scale = tag, scale
        self.ham_cost, self.l2, self.cap = ham_cost, l2, cap
        self.rows = []
        for m in msgs:
            fixed, feats = 0.0, []
            for name, score in m["symbols"]:
                if name in free:
                    feats.append(name)
                else:
                    fixed += score
            self.rows.append((1 if m["class"] == "spam" else 0, fixed, feats))

    def fit(self, iters=1500, lr=0.5):
        w = {k: self.prior[k] for k in self.free}
        lim = {k: bounds(self.prior[k],
                         self.cap if k not in BANDS else 1e9)
               for k in self.free}
        n = len(self.rows)
        for _ in range(iters):
            g = {k: 2 * self.l2 * (w[k] - self.prior[k]) for k in self.free}
            for y, fixed, feats in self.rows:
                s = fixed + sum(w[k] for k in feats)
                z = (s - self.tag) / self.scale
                p = 1 / (1 + math.exp(-z)) if z > -35 else 0.0
                c = 1.0 if y else self.ham_cost
                d = c * (p - y) / self.scale / n
                for k in feats:
                    g[k] += d
            for k in self.free:
                lo, hi = lim[k]
                w[k] = min(hi, max(lo, w[k] - lr * self.scale * g[k] * 10))
        return {k: round(v, 2) for k, v in w.items()}


def score(m, w):
    return sum(w.get(name, s) for name, s in m["symbols"])


def figures(msgs, w, tag):
    spam = [score(m, w) for m in msgs if m["class"] == "spam"]
    ham = sorted((score(m, w) for m in msgs if m["class"] != "spam"),
                 reverse=True)
    out = {"recall": sum(s >= tag for s in spam) / max(1, len(spam)),
           "fp": sum(s >= tag for s in ham), "nham": len(ham),
           "nspam": len(spam)}
    for rate in (0.001, 0.005):
        allowed = int(rate * len(ham) + 1e-9)
        thr = ham[allowed] if allowed < len(ham) else float("-inf")
        out[rate] = sum(s > thr for s in spam) / max(1, len(spam))
    return out


def line(name, f):
    return ("%-28s recall %6.2f %%  ham flagged %d of %d  | recall at 0.1 %% "
            "FP %6.2f %%, at 0.5 %% FP %6.2f %%" %
            (name, 100 * f["recall"], f["fp"], f["nham"], 100 * f[0.001],
             100 * f[0.005]))


def apply(rules_dir, conf_dir, w):
    changed = 0
    for path in sorted(glob.glob(os.path.join(rules_dir, "*.rules"))):
        out = []
        for ln in open(path):
            m = RULE_LINE.match(ln)
            if m and m.group(2) in w and not m.group(2) in BANDS:
                new = "%g" % w[m.group(2)]
                if float(new) != float(m.group(3)):
                    changed += 1
                # keep the column: pad or trim the spaces after the weight
                rest = m.group(4)
                pad = len(m.group(3)) - len(new)
                if pad > 0:
                    rest = " " * pad + rest
                elif pad < 0 and rest.startswith(" " * (1 - pad)):
                    rest = rest[-pad:]
                ln = m.group(1) + new + rest
            out.append(ln)
        with open(path, "w") as f:
            f.writelines(out)
    path = os.path.join(conf_dir, "50-bayes.conf")
    out = []
    for ln in open(path):
        if ln.split("#")[0].strip().startswith("score "):
            items = []
            for item in ln.split("#")[0].strip()[6:].split(","):
                k, v = item.split()
                if k in w:
                    changed += float(v) != w[k]
                    v = "%g" % w[k]
                items.append("%s %s" % (k, v))
            ln = "score " + ", ".join(items) + "\n"
        out.append(ln)
    with open(path, "w") as f:
        f.writelines(out)
    return changed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ham-cost", type=float, default=10.0)
    ap.add_argument("--l2", type=float, default=0.002)
    ap.add_argument("--min-hits", type=int, default=5)
    ap.add_argument("--max", type=float, default=2.5)
    ap.add_argument("--apply", action="store_true")
    ap.add_argument("--rules", default="rules")
    ap.add_argument("--conf", default="conf.d")
    ap.add_argument("dump")
    a = ap.parse_args()

    msgs = [json.loads(ln) for ln in open(a.dump)]
    tag = conf_value(os.path.join(a.conf, "70-policy.conf"), "tag_score", 5)
    scale = conf_value(os.path.join(a.conf, "60-heuristic.conf"), "scale",
                       1.5)
    prior = rule_weights(a.rules)
    prior.update(bayes_weights(os.path.join(a.conf, "50-bayes.conf")))
    hits = {}
    for m in msgs:
        for name, _ in m["symbols"]:
            hits[name] = hits.get(name, 0) + 1
    free = sorted(k for k in prior if hits.get(k, 0) >= a.min_hits
                  and prior[k] != 0)
    print("%d messages, tag_score %g, scale %g; %d weights fitted "
          "(ham cost %g, l2 %g, min hits %d, within [w/2, 2w], |w| <= %g)" %
          (len(msgs), tag, scale, len(free), a.ham_cost, a.l2, a.min_hits,
           a.max))
    folds = sorted({m["fold"] for m in msgs})
    print(line("writer's weights", figures(msgs, prior, tag)))
    held = []
    for f in folds:
        train = [m for m in msgs if m["fold"] != f]
        test = [m for m in msgs if m["fold"] == f]
        w = Model(train, prior, free, tag, scale, a.ham_cost, a.l2,
                  a.max).fit()
        for m in test:
            held.append(dict(m, symbols=[(n, w.get(n, s))
                                         for n, s in m["symbols"]]))
    print(line("fitted, held-out folds", figures(held, {}, tag)))
    w = Model(msgs, prior, free, tag, scale, a.ham_cost, a.l2, a.max).fit()
    print(line("fitted on all (optimistic)", figures(msgs, w, tag)))
    print("%-26s %7s %7s %6s" % ("symbol", "writer", "fitted", "hits"))
    for k in free:
        if w[k] != prior[k]:
            print("%-26s %7.2f %7.2f %6d" % (k, prior[k], w[k], hits[k]))
    if a.apply:
        n = apply(a.rules, a.conf, w)
        print("%d weights written to %s/*.rules and %s/50-bayes.conf" %
              (n, a.rules, a.conf))


if __name__ == "__main__":
    main()
