#!/usr/bin/env python3
"""Exact top-k search: Likeness' VectorIndex vs faiss IndexFlatIP, same vectors, one thread,
one query at a time, in one script run. Prints both medians and the ratio, and checks that
both return the same ids.

Usage: python tools/bench_search.py [--dim D] [N ...]   (default: --dim 128, the shipped
embedder's; sizes 100000 1000000)
Needs: pip install -r tools/requirements-bench.txt; cargo build --release --example bench_search
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import faiss
import numpy as np

K, QUERIES = 10, 30
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def main():
    parser = argparse.ArgumentParser(description="exact top-k search, Likeness vs faiss")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    args = parser.parse_args()
    DIM, sizes = args.dim, args.sizes
    faiss.omp_set_num_threads(1)
    binary = os.path.join(ROOT, "target", "release", "examples", "bench_search")
    rng = np.random.default_rng(7)
    for n in sizes:
        rows = rng.standard_normal((n, DIM), dtype=np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        # Queries near stored rows, as face searches are: a stored vector plus noise.
        q = rows[rng.integers(0, n, QUERIES)] + 0.05 * rng.standard_normal((QUERIES, DIM), dtype=np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        with tempfile.TemporaryDirectory() as tmp:
            rp, qp = os.path.join(tmp, "rows.f32"), os.path.join(tmp, "q.f32")
            rows.astype("<f4").tofile(rp)
            q.astype("<f4").tofile(qp)
            out = subprocess.run([binary, rp, qp, str(DIM), str(K)], check=True, capture_output=True, text=True).stdout
        ours = json.loads(out)
        # Peers: faiss exact f32 search, and faiss with 8-bit scalar-quantised storage (the
        # same memory class as Likeness's int8 codes).
        flat = faiss.IndexFlatIP(DIM)
        flat.add(rows)
        sq8 = faiss.IndexScalarQuantizer(DIM, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        sq8.train(rows)
        sq8.add(rows)
        stats = {}
        for name, index in [("flat", flat), ("sq8", sq8)]:
            times, top1, recall = [], 0, 0.0
            for i in range(QUERIES):
                t = time.perf_counter()
                _, ids = index.search(q[i : i + 1], K)
                times.append((time.perf_counter() - t) * 1e3)
            stats[name] = float(np.median(times))
        # Agreement with the exact f32 answer: top-1, and recall of the f32 top-K.
        for i in range(QUERIES):
            _, ids = flat.search(q[i : i + 1], K)
            exact = list(ids[0])
            top1 += ours["results"][i][:1] == exact[:1]
            recall += len(set(exact) & set(ours["results"][i])) / K
        print(f"n={n} dim={DIM} k={K}: likeness {ours['median_ms']:.2f} ms, faiss IndexFlatIP {stats['flat']:.2f} ms "
              f"(ratio {ours['median_ms'] / stats['flat']:.2f}x), faiss SQ8 {stats['sq8']:.2f} ms "
              f"(ratio {ours['median_ms'] / stats['sq8']:.2f}x); against exact f32: same top-1 {top1}/{QUERIES}, "
              f"recall@{K} {recall / QUERIES:.3f}; likeness index memory {ours['bytes_per_vector']} bytes per face")
        del flat, sq8, rows


if __name__ == "__main__":
    main()
