"""Session 29: do centroids of the examples' runs of letters (three to five letters of each word,
its ends marked) help beside the centroids of what the ranker reads? Reads the dump of
`DUMP=/tmp/dump.jsonl cargo test --lib dump_for_experiment` and prints, for each weight of the
letters, the leave-one-split-out cross-validation over the studied splits (the figure that chose
the weight) and the unseen splits trained on every studied one, per split.

    python3 bench/ranking/letters.py /tmp/dump.jsonl
    RUNS="4 4" MOST=0.1 WEIGHTS=1.0 python3 bench/ranking/letters.py /tmp/dump.jsonl   # as shipped

RUNS gives the shortest and longest run (default "3 5", the first experiment), MOST the largest
share of the examples a run may be in (default 1, none left out), WEIGHTS the letters' weights.

The words' centroids are rebuilt as `src/catalog/ranking/examples.rs` builds them (terms at their
best weight, adjacent pairs 1, unread prefixes 2, prefixes that examples of eight entries hold
left out), at their weight 1.5. Needs numpy and scipy.
"""
import json
import math
import os
import re
import sys
import unicodedata
from collections import defaultdict

import numpy as np
from scipy.sparse import csr_matrix

from experiment import STUDIED, UNSEEN, fmt, rank_of, ranking, tally

UNREAD = 2.0
SMALL_WORD_ENTRIES = 8
WORDS = 1.5
WEIGHTS = [float(w) for w in os.environ.get("WEIGHTS", "0 0.25 0.5 0.75 1.0 1.5").split()]
SHORTEST, LONGEST = (int(n) for n in os.environ.get("RUNS", "3 5").split())
# Runs in more than this share of the examples say nothing (1: none left out).
MOST = float(os.environ.get("MOST", "1"))


def read_features(q):
    f = {}
    for name, w in q["terms"]:
        f["t:" + name] = max(f.get("t:" + name, 0.0), w)
    for p in q["pairs"]:
        f["p:" + p] = 1.0
    for u in q.get("unread", []):
        f["u:" + u] = UNREAD
    return f


def letter_features(text, shortest=SHORTEST, longest=LONGEST):
    counts = defaultdict(int)
    for word in re.findall(r"\w+", unicodedata.normalize("NFC", text).lower()):
        word = "<" + word + ">"
        for n in range(shortest, longest + 1):
            for i in range(len(word) - n + 1):
                counts[word[i : i + n]] += 1
    return {k: 1 + math.log(v) for k, v in counts.items()}


def centroid_scores(data, feats, train, test, least=1, small_words=False):
    """Each entry's centroid of its training examples; every test question's cosine to each,
    scaled so the best is 1."""
    ignored = set()
    if small_words:
        entries = defaultdict(set)
        for i in train:
            for k in feats[i]:
                if k.startswith("u:"):
                    entries[k] |= set(data[i]["expect"])
        ignored = {k for k, e in entries.items() if len(e) >= SMALL_WORD_ENTRIES}
    df = defaultdict(int)
    for i in train:
        for k in feats[i]:
            df[k] += 1
    n = len(train)
    most = MOST * n if least > 1 else n
    idf = {k: math.log((n + 1) / (c + 1)) + 1 for k, c in df.items() if least <= c <= most and k not in ignored}
    col = {k: j for j, k in enumerate(idf)}

    def matrix(idx):
        rows, cols, vals = [], [], []
        for r, i in enumerate(idx):
            v = {k: w * idf[k] for k, w in feats[i].items() if k in idf}
            norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
            for k, x in v.items():
                rows.append(r)
                cols.append(col[k])
                vals.append(x / norm)
        return csr_matrix((vals, (rows, cols)), shape=(len(idx), len(col)))

    classes = sorted({e for i in train for e in data[i]["expect"]})
    at = {c: j for j, c in enumerate(classes)}
    x = matrix(train).toarray()
    sums = np.zeros((len(classes), x.shape[1]))
    for r, i in enumerate(train):
        for e in data[i]["expect"]:
            sums[at[e]] += x[r] / len(data[i]["expect"])
    sums /= np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    out = []
    for row in matrix(test).toarray() @ sums.T:
        best = row.max()
        out.append({c: v / best for c, v in zip(classes, row) if v > 0 and best > 0})
    return out


def run(data, words, letters, folds):
    ranks = {w: defaultdict(list) for w in WEIGHTS}
    for train, test in folds:
        by_words = centroid_scores(data, words, train, test, small_words=True)
        by_letters = centroid_scores(data, letters, train, test, least=2)
        for w in WEIGHTS:
            for i, a, b in zip(test, by_words, by_letters):
                mix = defaultdict(float)
                for c, v in a.items():
                    mix[c] += WORDS * v
                for c, v in b.items():
                    mix[c] += w * v
                ranks[w][data[i]["set"]].append(rank_of(ranking(data[i], mix, 1.0), data[i]["expect"]))
    return ranks


def main(path):
    data = [json.loads(line) for line in open(path)]
    words = [read_features(q) for q in data]
    letters = [letter_features(q["q"]) for q in data]
    studied = [i for i, q in enumerate(data) if q["set"] in STUDIED]
    folds = [([i for i in studied if data[i]["set"] != s], [i for i in studied if data[i]["set"] == s]) for s in STUDIED]
    ranks = run(data, words, letters, folds)
    print(f"runs of {SHORTEST} to {LONGEST} letters, in at most {MOST} of the examples")
    for w in WEIGHTS:
        print(f"cross-validation  letters {w:<4} {fmt(tally([r for rs in ranks[w].values() for r in rs]))}")
    unseen = [i for i, q in enumerate(data) if q["set"] in UNSEEN]
    ranks = run(data, words, letters, [(studied, unseen)])
    for w in WEIGHTS:
        per = " ".join(f"{s.lower()}:{tally(ranks[w][s])[0]}" for s in UNSEEN if ranks[w][s])
        print(f"unseen            letters {w:<4} {fmt(tally([r for rs in ranks[w].values() for r in rs]))}  {per}")


if __name__ == "__main__":
    main(sys.argv[1])
