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
        index = faiss.IndexFlatIP(DIM)
        index.add(rows)
        times, same = [], 0
        for i in range(QUERIES):
            t = time.perf_counter()
            _, ids = index.search(q[i : i + 1], K)
            times.append((time.perf_counter() - t) * 1e3)
            same += list(ids[0]) == ours["results"][i]
        theirs = float(np.median(times))
        print(f"n={n} dim={DIM} k={K}: likeness {ours['median_ms']:.2f} ms, faiss IndexFlatIP {theirs:.2f} ms, "
              f"ratio {ours['median_ms'] / theirs:.2f}x; identical top-{K} for {same}/{QUERIES} queries; "
              f"likeness index memory {ours['bytes_per_vector']} bytes per face")
        del index, rows


if __name__ == "__main__":
    main()
