"""Session 17: does a static-embedding similarity help the catalogue's search on questions it was
never tuned on? WordLlama's 256-dimension token vectors (shipped inside its PyPI wheel, so no
model download), averaged per text, compared with each entry's fields and with the studied
questions (a nearest-example vote), each blended with the ranker's scores from the dump of
`DUMP=... cargo test --lib dump_for_experiment`. Not kept: see catalog/README.md.

    python3 -m venv /tmp/wl && /tmp/wl/bin/pip install wordllama
    /tmp/wl/bin/python bench/ranking/embeddings.py /tmp/dump.jsonl

UNSEEN below are the splits that were held out when it ran (fresh12, fresh13, fresh15).
"""
import json, sys, glob, tomllib
import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer
import wordllama
import os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from experiment import rank_of  # noqa: E402  (the same rank rule as the vote's experiment)
base = os.path.dirname(wordllama.__file__) + '/'
E = load_file(base + 'weights/l2_supercat_256.safetensors')['embedding.weight'].astype(np.float32)
tok = Tokenizer.from_file(base + 'tokenizers/l2_supercat_tokenizer_config.json')
tok.no_padding()

def emb(texts):
    out = []
    for t in texts:
        ids = tok.encode(t, add_special_tokens=False).ids
        v = E[ids].mean(axis=0) if ids else np.zeros(E.shape[1], np.float32)
        out.append(v / (np.linalg.norm(v) or 1))
    return np.array(out)

entries = {}
for f in sorted(glob.glob(os.path.join(os.path.dirname(__file__), '../../catalog/entries/*.toml'))):
    for e in tomllib.load(open(f, 'rb'))['entry']:
        entries[e['code']] = e
codes = sorted(entries)

def doc_views(e, kind):
    parts = {'title': [e['title']], 'kw': e.get('keywords', []), 'meaning': [e.get('meaning', '')],
             'causes': e.get('causes', []), 'user': [e.get('user_message', '')],
             'steps': e.get('steps', []), 'notes': [e.get('agent_notes', '')]}
    return [s for k in kind for s in parts[k] if s]

data = [json.loads(l) for l in open(sys.argv[1])]
Q = emb([q['q'] for q in data])
STUDIED = ["Dev", "Holdout", "Fresh", "Blind", "Fresh8", "Fresh9", "Fresh10", "Fresh11", "Fresh14"]  # as when it ran
UNSEEN = ["Fresh12", "Fresh13", "Fresh15"]

def tally(ranks):
    n = len(ranks)
    return sum(r == 1 for r in ranks) / n, sum(r is not None and r <= 3 for r in ranks) / n, sum(1 / r for r in ranks if r) / n

def order_blend(q, es, lam):
    code_hits = [c for c, _, t in q['hits'] if not t]
    hit = {c: s for c, s, t in q['hits'] if t}
    best = max(hit.values(), default=0) or 1
    sc = {c: hit.get(c, 0) / best + lam * es[c] for c in codes}
    order = sorted(sc, key=lambda c: -sc[c])
    seen, out = set(), []
    for c in code_hits + order:
        if c not in seen:
            seen.add(c); out.append(c)
    return out

# entry vectors: mean of normalized sentence vectors per view, or max-sim over sentences
def entry_scores(kind, mode):
    sims = {}
    for c in codes:
        sents = doc_views(entries[c], kind)
        V = emb(sents)
        S = Q @ V.T  # nq x ns
        if mode == 'max':
            sims[c] = S.max(axis=1)
        elif mode == 'mean':
            v = V.mean(axis=0); v /= np.linalg.norm(v)
            sims[c] = Q @ v
        elif mode == 'top2':
            s = np.sort(S, axis=1)[:, ::-1]
            sims[c] = s[:, :2].mean(axis=1) if S.shape[1] > 1 else s[:, 0]
    M = np.stack([sims[c] for c in codes], axis=1)  # nq x ncodes
    return M

def report(name, M, lams=(0, 0.5, 1, 2, 4, 8)):
    # M: nq x ncodes similarity; normalise per question: (s - mean)/std -> softmax-ish scale
    Z = (M - M.mean(axis=1, keepdims=True)) / (M.std(axis=1, keepdims=True) + 1e-9)
    Z = np.maximum(Z, 0) / 3  # z of 3 -> 1
    print(f'\n{name}')
    for lam in lams:
        row = []
        for group in (STUDIED, UNSEEN):
            ranks = []
            for i, q in enumerate(data):
                if q['set'] in group:
                    es = dict(zip(codes, Z[i]))
                    ranks.append(rank_of(order_blend(q, es, lam), q['expect']))
            row.append(tally(ranks))
        pure = tally([rank_of([codes[j] for j in np.argsort(-M[i])], q['expect']) for i, q in enumerate(data) if q['set'] in UNSEEN])
        print(f'  lam {lam:<4} studied {row[0][0]:.3f}/{row[0][1]:.3f}/{row[0][2]:.3f}  unseen {row[1][0]:.3f}/{row[1][1]:.3f}/{row[1][2]:.3f}   (embedding alone unseen {pure[0]:.3f}/{pure[1]:.3f})')

for kind in [('title', 'kw'), ('title', 'kw', 'meaning', 'causes'), ('title', 'kw', 'meaning', 'causes', 'user'), ('title', 'kw', 'meaning', 'causes', 'user', 'steps')]:
    for mode in ('max', 'mean', 'top2'):
        report(f'{"+".join(kind)} {mode}', entry_scores(kind, mode))

print('\n=== kNN over studied questions (embedding), unseen only')
tr = [i for i, q in enumerate(data) if q['set'] in STUDIED]
for k in (5, 10, 20):
    M = np.zeros((len(data), len(codes)))
    S = Q @ Q[tr].T
    for i in range(len(data)):
        s = S[i].copy()
        for j, t in enumerate(tr):
            if t == i: s[j] = -1
        top = np.argsort(-s)[:k]
        for j in top:
            ex = data[tr[j]]['expect']
            for c in ex:
                M[i, codes.index(c)] += max(s[j], 0) / len(ex)
    print(f'k={k}')
    for lam in (0, 0.25, 0.5, 1, 2):
        ranks = [rank_of(order_blend(q, dict(zip(codes, M[i] / (M[i].max() or 1))), lam), q['expect']) for i, q in enumerate(data) if q['set'] in UNSEEN]
        t = tally(ranks)
        print(f'  lam {lam:<4} unseen {t[0]:.3f}/{t[1]:.3f}/{t[2]:.3f}')
