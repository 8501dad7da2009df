"""Session 12: does a supervised component trained on the studied splits' labelled questions
help the catalogue's search? Reads the dump of `DUMP=... cargo test --lib dump_for_experiment`
(each question's reading as the ranker reads it, its hits and its text scores) and measures
leave-one-split-out over the studied splits, and the unseen splits (UNSEEN) trained on all studied ones.

    python3 bench/ranking/experiment.py /tmp/rank/dump.jsonl [--centroid] [--logistic]
"""
import json
import math
import sys
from collections import defaultdict

STUDIED = ["Dev", "Holdout", "Fresh", "Blind", "Fresh8", "Fresh9", "Fresh10", "Fresh11", "Fresh14", "Fresh15", "Fresh17", "Fresh18", "Fresh19", "Fresh20", "Fresh21", "Fresh22", "Fresh23", "Fresh24", "Fresh25", "Fresh26", "Fresh27", "Fresh28", "Fresh29", "Fresh30", "Fresh31", "Fresh32", "Fresh33", "Fresh34"]
UNSEEN = ["Fresh12", "Fresh13", "Fresh16", "Fresh35", "Fresh36", "Fresh37", "Fresh38", "Fresh39", "Fresh40", "Fresh41", "Fresh42", "Fresh43", "Fresh44", "Fresh45", "Fresh46", "Fresh47", "Fresh48", "Fresh49"]


def load(path):
    return [json.loads(line) for line in open(path)]


def features(q, kind):
    """Sparse features of a question. kind: terms / terms+pairs / +stems."""
    f = defaultdict(float)
    for name, w in q["terms"]:
        f["t:" + name] = max(f["t:" + name], w)
    if "pairs" in kind:
        for p in q["pairs"]:
            f["p:" + p] = 1.0
    if "stems" in kind:
        for s in q["stems"]:
            f["s:" + s] = 1.0
    return f


def idf_of(train_vecs):
    df = defaultdict(int)
    for v in train_vecs:
        for k in v:
            df[k] += 1
    n = len(train_vecs)
    return {k: math.log((n + 1) / (c + 1)) + 1 for k, c in df.items()}


def weigh(v, idf):
    out = {k: w * idf[k] for k, w in v.items() if k in idf}
    norm = math.sqrt(sum(x * x for x in out.values())) or 1.0
    return {k: x / norm for k, x in out.items()}


def cosine(a, b):
    if len(a) > len(b):
        a, b = b, a
    return sum(x * b.get(k, 0.0) for k, x in a.items())


class Knn:
    def __init__(self, train, kind, k):
        raw = [features(q, kind) for q in train]
        self.idf = idf_of(raw)
        self.vecs = [weigh(v, self.idf) for v in raw]
        self.labels = [q["expect"] for q in train]
        self.kind, self.k = kind, k

    def scores(self, q):
        v = weigh(features(q, self.kind), self.idf)
        sims = sorted(((cosine(v, t), i) for i, t in enumerate(self.vecs)), reverse=True)[: self.k]
        out = defaultdict(float)
        for s, i in sims:
            if s <= 0:
                continue
            for e in self.labels[i]:
                out[e] += s / len(self.labels[i])
        return out


class Centroid:
    """One vector per entry, the normalised sum of its examples' vectors (Rocchio); a question
    scores each entry by cosine, scaled so the best is 1. Session 19's alternative to the vote."""

    def __init__(self, train, kind):
        raw = [features(q, kind) for q in train]
        self.idf = idf_of(raw)
        sums = defaultdict(lambda: defaultdict(float))
        for v, q in zip((weigh(r, self.idf) for r in raw), train):
            for e in q["expect"]:
                for k, x in v.items():
                    sums[e][k] += x / len(q["expect"])
        self.centroids = {}
        for e, c in sums.items():
            norm = math.sqrt(sum(x * x for x in c.values())) or 1.0
            self.centroids[e] = {k: x / norm for k, x in c.items()}
        self.kind = kind

    def scores(self, q):
        v = weigh(features(q, self.kind), self.idf)
        s = {e: cosine(v, c) for e, c in self.centroids.items()}
        best = max(s.values(), default=0.0) or 1.0
        return {e: x / best for e, x in s.items() if x > 0}


class Logistic:
    """Multinomial logistic regression, full-batch gradient descent with L2, pure Python."""

    def __init__(self, train, kind, l2=1e-3, epochs=60, lr=0.5):
        raw = [features(q, kind) for q in train]
        self.idf = idf_of(raw)
        xs = [weigh(v, self.idf) for v in raw]
        self.classes = sorted({e for q in train for e in q["expect"]})
        self.kind = kind
        w = {c: defaultdict(float) for c in self.classes}
        b = {c: 0.0 for c in self.classes}
        n = len(xs)
        for _ in range(epochs):
            gw = {c: defaultdict(float) for c in self.classes}
            gb = {c: 0.0 for c in self.classes}
            for x, q in zip(xs, train):
                z = {c: b[c] + sum(v * w[c].get(k, 0.0) for k, v in x.items()) for c in self.classes}
                m = max(z.values())
                ez = {c: math.exp(z[c] - m) for c in self.classes}
                tot = sum(ez.values())
                target = {e: 1 / len(q["expect"]) for e in q["expect"]}
                for c in self.classes:
                    g = ez[c] / tot - target.get(c, 0.0)
                    if g == 0:
                        continue
                    gb[c] += g
                    for k, v in x.items():
                        gw[c][k] += g * v
            for c in self.classes:
                b[c] -= lr * gb[c] / n
                wc = w[c]
                for k in set(wc) | set(gw[c]):
                    wc[k] -= lr * (gw[c].get(k, 0.0) / n + l2 * wc.get(k, 0.0))
        self.w, self.b = w, b

    def scores(self, q):
        x = weigh(features(q, self.kind), self.idf)
        z = {c: self.b[c] + sum(v * self.w[c].get(k, 0.0) for k, v in x.items()) for c in self.classes}
        m = max(z.values())
        ez = {c: math.exp(z[c] - m) for c in self.classes}
        tot = sum(ez.values())
        return {c: ez[c] / tot for c in self.classes}


FLOOR = 0.1


def ranking(q, model_scores, lam):
    """Codes named in the question keep their places; the text hits are re-ranked by
    text score / best text score + lam * model score, then the relevance floor applies."""
    code_hits = [c for c, _, is_text in q["hits"] if not is_text]
    text = {c: s for c, s in q["text"]}
    best = max(text.values(), default=0.0)
    cands = set(text) | set(model_scores)
    blended = {}
    for c in cands:
        base = text.get(c, 0.0) / best if best > 0 else 0.0
        blended[c] = base + lam * model_scores.get(c, 0.0)
    order = sorted(blended.items(), key=lambda kv: (-kv[1], kv[0]))
    top = order[0][1] if order else 0.0
    rest = [c for c, s in order if s > 0 and s >= FLOOR * top]
    seen, out = set(), []
    for c in code_hits + rest:
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out[:20]


def baseline_ranking(q):
    seen, out = set(), []
    for c, _, _ in q["hits"]:
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out[:20]


def rank_of(order, expect):
    for i, c in enumerate(order):
        if c in expect:
            return i + 1
    return None


def tally(ranks):
    n = len(ranks) or 1
    return (
        sum(r == 1 for r in ranks),
        sum(r is not None and r <= 3 for r in ranks),
        sum(1 / r for r in ranks if r),
        len(ranks),
    )


def fmt(t):
    first, top3, rr, n = t
    n = n or 1
    return f"{first:>3}/{t[3]:<3} top-1 {first / n:.3f}  top-3 {top3 / n:.3f}  MRR {rr / n:.3f}"


def evaluate(data, make, lams):
    """Leave-one-split-out over the studied splits: ranks per lam, pooled."""
    pooled = {lam: [] for lam in lams}
    per_split = {lam: {} for lam in lams}
    for held in STUDIED:
        train = [q for q in data if q["set"] in STUDIED and q["set"] != held]
        test = [q for q in data if q["set"] == held]
        model = make(train)
        cache = [model.scores(q) for q in test]
        for lam in lams:
            ranks = [rank_of(ranking(q, s, lam), q["expect"]) for q, s in zip(test, cache)]
            per_split[lam][held] = tally(ranks)
            pooled[lam] += ranks
    return {lam: tally(r) for lam, r in pooled.items()}, per_split


def unseen(data, make, lam):
    train = [q for q in data if q["set"] in STUDIED]
    model = make(train)
    out = {}
    for split in UNSEEN + ["both"]:
        test = [q for q in data if (q["set"] == split or (split == "both" and q["set"] in UNSEEN))]
        out[split] = (
            tally([rank_of(baseline_ranking(q), q["expect"]) for q in test]),
            tally([rank_of(ranking(q, model.scores(q), lam), q["expect"]) for q in test]),
        )
    return out


def main():
    data = load(sys.argv[1])
    lams = [0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]
    print("baseline per split:")
    for split in STUDIED + UNSEEN:
        qs = [q for q in data if q["set"] == split]
        print(f"  {split:<8} {fmt(tally([rank_of(baseline_ranking(q), q['expect']) for q in qs]))}")
    models = []
    for kind in ["terms", "terms+pairs", "terms+pairs+stems", "terms+stems"]:
        for k in [5, 10, 20]:
            models.append((f"knn k={k} {kind}", lambda tr, kind=kind, k=k: Knn(tr, kind, k)))
    if "--centroid" in sys.argv:
        for kind in ["terms", "terms+pairs"]:
            models.append((f"centroid {kind}", lambda tr, kind=kind: Centroid(tr, kind)))
    if "--logistic" in sys.argv:
        for kind in ["terms+pairs", "terms+pairs+stems"]:
            models.append((f"logistic {kind}", lambda tr, kind=kind: Logistic(tr, kind)))
    for name, make in models:
        pooled, _ = evaluate(data, make, lams)
        best = max(lams, key=lambda lam: (pooled[lam][0], pooled[lam][2], -lam))
        print(f"\n{name}: cross-validation (studied splits, leave one out), pooled")
        for lam in lams:
            mark = " <- chosen" if lam == best else ""
            print(f"  lam {lam:<5} {fmt(pooled[lam])}{mark}")
        for split, (base, blended) in unseen(data, make, best).items():
            print(f"  {split:<8} base {fmt(base)}   blended {fmt(blended)}")


if __name__ == "__main__":
    main()
