#!/usr/bin/env python3
"""Rekognition's API on likeness-server under load: SearchFacesByImage and IndexFaces
requests per second and p50/p99 latency at concurrency 1, 4 and 16, through boto3, against
the machine's limit measured in the same run: the CLI's single-request time (decode, detect,
embed; `likeness bench`, one thread) times the cores. The ratio says how close the server
comes to cores x single-request throughput.

Usage: python tools/bench_rekognition.py [--requests N] [--image PATH]
Needs: pip install -r tests/rekognition/requirements.txt; cargo build --release
"""
import argparse
import concurrent.futures
import json
import os
import pathlib
import statistics
import subprocess
import tempfile
import time

import boto3
import botocore.config

ROOT = pathlib.Path(__file__).resolve().parents[1]
SERVER = ROOT / "target" / "release" / "likeness-server"
CLI = ROOT / "target" / "release" / "likeness"
FACES = ROOT.parent / "shared" / "data" / "faces" / "identities"


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=64, help="requests per operation and concurrency")
    parser.add_argument("--image", default=str(FACES / "obama" / "obama2.jpg"))
    args = parser.parse_args()
    image = pathlib.Path(args.image).read_bytes()
    cores = os.cpu_count() or 1

    single = json.loads(subprocess.run([str(CLI), "bench", "--image", args.image, "--iterations", "20"],
                                       check=True, capture_output=True, text=True).stdout)
    single_ms = single["median_ms"]
    limit_rps = cores * 1000 / single_ms
    print(f"CLI single request (decode+detect+embed, 1 thread): {single_ms:.1f} ms median; "
          f"machine limit {cores} cores x {1000 / single_ms:.1f}/s = {limit_rps:.1f} req/s")

    with tempfile.TemporaryDirectory() as tmp:
        keys = pathlib.Path(tmp) / "keys"
        keys.write_text("AKIDBENCH secret\n")
        server = subprocess.Popen(
            [str(SERVER), "--listen", "127.0.0.1:0", "--database", f"sqlite://{tmp}/s.db",
             "--rekognition-keys", str(keys), "--rekognition-data", f"{tmp}/rk",
             # A queue deep enough that the benchmark measures throughput, not refusals.
             "--rekognition-queue", "64"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        url = server.stdout.readline().strip().split(" ")[-1]
        try:
            cfg = botocore.config.Config(retries={"max_attempts": 1}, max_pool_connections=32)
            rk = boto3.client("rekognition", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id="AKIDBENCH", aws_secret_access_key="secret", config=cfg)
            rk.create_collection(CollectionId="bench")
            # A collection to search: every photo of the data set.
            for person in sorted(os.listdir(FACES)):
                for f in sorted(os.listdir(FACES / person)):
                    rk.index_faces(CollectionId="bench", Image={"Bytes": (FACES / person / f).read_bytes()},
                                   ExternalImageId=person, MaxFaces=1)
            ops = {
                "SearchFacesByImage": lambda: rk.search_faces_by_image(CollectionId="bench", Image={"Bytes": image}),
                "IndexFaces": lambda: rk.index_faces(CollectionId="bench", Image={"Bytes": image}, MaxFaces=1),
            }
            print(f"{'operation':<20}{'conc':>5}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'vs limit':>10}")
            for name, call in ops.items():
                call()  # warm
                for conc in (1, 4, 16):
                    def timed(_):
                        t = time.perf_counter()
                        call()
                        return (time.perf_counter() - t) * 1000
                    t0 = time.perf_counter()
                    with concurrent.futures.ThreadPoolExecutor(conc) as pool:
                        lat = list(pool.map(timed, range(args.requests)))
                    rps = args.requests / (time.perf_counter() - t0)
                    print(f"{name:<20}{conc:>5}{rps:>8.1f}{statistics.median(lat):>9.1f}{percentile(lat, 99):>9.1f}"
                          f"{rps / limit_rps:>10.2f}")
        finally:
            server.kill()
            server.wait()
            server.stdout.close()


if __name__ == "__main__":
    main()
