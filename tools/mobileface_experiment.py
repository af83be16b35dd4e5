#!/usr/bin/env python3
"""Candidate embedder: human-models' `mobileface` (112 px, 256-d, 2.2 MB) against the shipped
dlib ResNet, both aligned from the same BlazeFace keypoints, on a pairs file. An experiment
for the vision engine; nothing here ships.

Each network gets the alignment it was trained with: mobileface the ArcFace 112 px
five-point template (BlazeFace's mouth centre mapped onto the mean of the two mouth
corners), the ResNet dlib's mean face as in the Rust pipeline. Both take RGB 0..255 (their
normalisation is inside the graph) and run in onnxruntime; each is scored with and without
flip-averaging.

Usage:
  python tools/convert_models.py PATH/human-models/models /tmp/cand mobileface.onnx
  cargo run --release -p likeness-cli --example dump_detections -- DATA/MANIFEST.tsv > detections.tsv
  python tools/mobileface_experiment.py /tmp/cand/mobileface.onnx detections.tsv DATA/ DATA/pairs.tsv
Needs numpy, pillow, onnxruntime (tools/requirements-bench.txt).
"""
import csv
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faceapi_experiment import TEMPLATE as DLIB_150, chip, metrics  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
# ArcFace's 112 px template: eyes, nose tip, mean of the two mouth corners.
ARCFACE_112 = np.array([(38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (56.1396, 92.2848)])


def main(mobileface, detections, root, pairs):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    nets = {
        "dlib ResNet (shipped)": (ort.InferenceSession(os.path.join(ROOT, "models", "faceapi-resnet.onnx"), opts), DLIB_150, 150),
        "mobileface": (ort.InferenceSession(mobileface, opts), ARCFACE_112, 112),
    }
    vectors = {(name, flip): {} for name in nets for flip in (False, True)}
    run_ms = {name: [] for name in nets}
    for row in csv.reader(open(detections), delimiter="\t"):
        path, kps = row[0], [float(x) for x in row[6:14]]
        img = Image.open(root + path).convert("RGB")
        for name, (session, template, size) in nets.items():
            c = chip(img, list(zip(kps[0::2], kps[1::2])), template, size).astype(np.float32)
            feed = session.get_inputs()[0].name
            t = time.perf_counter()
            v = session.run(None, {feed: c[None]})[0][0]
            run_ms[name].append((time.perf_counter() - t) * 1e3)
            m = session.run(None, {feed: c[:, ::-1][None].copy()})[0][0]
            for flip, vec in ((False, v), (True, v + m)):
                vectors[(name, flip)][path] = vec / np.linalg.norm(vec)
    print(f"| embedder | flip-averaged | AUC | balanced | TAR@FAR 1e-2 | TAR@FAR 1e-3 | onnxruntime ms a run |")
    print("|---|---|---|---|---|---|---|")
    for (name, flip), vecs in vectors.items():
        pos, neg = [], []
        for r in csv.DictReader(open(pairs), delimiter="\t"):
            a, b = vecs.get(r["path_a"]), vecs.get(r["path_b"])
            same = r["same"] == "1"
            s = float(a @ b) if a is not None and b is not None else (-9.0 if same else 9.0)  # undetected: wrong
            (pos if same else neg).append(s)
        m = metrics(pos, neg)
        print(f"| {name} | {'yes' if flip else 'no'} | {m['auc']:.5f} | {m['balanced']:.2%} | {m['tar_at_far_0.01']:.2%} | "
              f"{m['tar_at_far_0.001']:.2%} | {np.median(run_ms[name]):.1f} |")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
