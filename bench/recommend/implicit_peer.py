#!/usr/bin/env python3
"""Runs `implicit` (PyPI, 0.7.3) ALS and BPR on a split written by `iob eval recommend`
(train.tsv / valid.tsv / test.tsv: `person<TAB>item`, dense 0-based; meta.json) and prints the
same metrics as iob, as JSON: {"results": [{algorithm, params, valid, test, train_secs}]}.

Protocol, identical to iob's: models train on train.tsv only; hyper-parameters are chosen on
valid.tsv by NDCG@10; the chosen configuration's test metrics are reported; ranking is over all
items, excluding the person's train items (and, for the test, valid items).

  OPENBLAS_NUM_THREADS=1 python implicit_peer.py --split DIR [--threads 2] [--quick]
  python implicit_peer.py --split DIR --time-als 64 --iterations 15   # seconds per ALS iteration
"""
import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from implicit.als import AlternatingLeastSquares  # noqa: E402
from implicit.bpr import BayesianPersonalizedRanking  # noqa: E402

K = 10


def read_pairs(path):
    data = np.loadtxt(path, dtype=np.int64, ndmin=2)
    if data.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    return data


def per_user(pairs, n_users):
    out = [[] for _ in range(n_users)]
    for u, i in pairs:
        out[u].append(i)
    return [sorted(x) for x in out]


def metrics(ranked, relevant):
    rel = set(relevant)
    hits, dcg, first = 0, 0.0, None
    for r, item in enumerate(ranked[:K]):
        if item in rel:
            hits += 1
            dcg += 1.0 / math.log2(r + 2)
            if first is None:
                first = r
    idcg = sum(1.0 / math.log2(r + 2) for r in range(min(len(rel), K)))
    return (hits / len(rel), dcg / idcg, 0.0 if first is None else 1.0 / (first + 1),
            1.0 if hits else 0.0, hits / K)


def evaluate(scores_fn, train_lists, targets, extra_mask, n_items):
    sums = np.zeros(5)
    n = 0
    users = [u for u, t in enumerate(targets) if t]
    for start in range(0, len(users), 512):
        batch = users[start:start + 512]
        scores = scores_fn(np.array(batch))
        for row, u in zip(scores, batch):
            row = np.array(row, dtype=np.float64)
            row[train_lists[u]] = -np.inf
            if extra_mask is not None and extra_mask[u]:
                row[extra_mask[u]] = -np.inf
            top = np.argpartition(-row, K)[:K]
            top = top[np.argsort(-row[top], kind="stable")]
            top = [int(i) for i in top if np.isfinite(row[i])]
            sums += metrics(top, targets[u])
            n += 1
    m = sums / max(n, 1)
    return {"recall": m[0], "ndcg": m[1], "mrr": m[2], "hit": m[3], "precision": m[4], "persons": n}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--time-als", type=int, default=0, help="factors: time ALS iterations only")
    ap.add_argument("--iterations", type=int, default=15)
    a = ap.parse_args()
    meta = json.load(open(os.path.join(a.split, "meta.json")))
    nu, ni = meta["users"], meta["items"]
    train = read_pairs(os.path.join(a.split, "train.tsv"))
    x = sp.csr_matrix((np.ones(len(train), dtype=np.float32), (train[:, 0], train[:, 1])), shape=(nu, ni))
    x.data[:] = 1.0
    if a.time_als:
        m = AlternatingLeastSquares(factors=a.time_als, regularization=0.05, alpha=2.0,
                                    iterations=a.iterations, num_threads=a.threads,
                                    calculate_training_loss=False, random_state=42)
        t = time.perf_counter()
        m.fit(x, show_progress=False)
        secs = time.perf_counter() - t
        print(json.dumps({"factors": a.time_als, "iterations": a.iterations, "threads": a.threads,
                          "seconds": secs, "per_iteration": secs / a.iterations}))
        return
    valid = per_user(read_pairs(os.path.join(a.split, "valid.tsv")), nu)
    test = per_user(read_pairs(os.path.join(a.split, "test.tsv")), nu)
    train_lists = per_user(train, nu)

    def scorer(m):
        uf, itf = m.user_factors, m.item_factors
        return lambda users: uf[users] @ itf.T

    results = []
    grids = {
        "implicit-als": [dict(factors=f, regularization=r, alpha=al)
                         for f in ([64] if a.quick else [64, 128])
                         for r in ([0.1] if a.quick else [0.1, 1.0, 10.0, 50.0])
                         for al in ([1.0] if a.quick else [1.0, 5.0, 20.0])],
        "implicit-bpr": [dict(factors=f, learning_rate=lr, regularization=r, iterations=it)
                         for f in ([64] if a.quick else [64, 128])
                         for lr in ([0.05] if a.quick else [0.01, 0.05, 0.1])
                         for r in [0.01]
                         for it in [100]],
    }
    for name, grid in grids.items():
        best = None
        for p in grid:
            if name == "implicit-als":
                m = AlternatingLeastSquares(iterations=15, num_threads=a.threads,
                                            calculate_training_loss=False, random_state=42, **p)
            else:
                m = BayesianPersonalizedRanking(num_threads=a.threads, random_state=42, **p)
            t = time.perf_counter()
            m.fit(x, show_progress=False)
            secs = time.perf_counter() - t
            v = evaluate(scorer(m), train_lists, valid, None, ni)
            print(f"{name} {p}: valid NDCG@10 {v['ndcg']:.4f} ({secs:.2f} s)", file=sys.stderr)
            if best is None or v["ndcg"] > best["valid"]["ndcg"]:
                te = evaluate(scorer(m), train_lists, test, valid, ni)
                best = {"algorithm": name, "params": json.dumps(p), "valid": v, "test": te,
                        "train_secs": secs}
        results.append(best)
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
