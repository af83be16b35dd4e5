#!/usr/bin/env python3
"""Alignment experiments for the faceres embedder (development tool, onnxruntime).

Input: the TSV from `cargo run --release --example dump_detections -- lfw-dev/MANIFEST.tsv`
(path, score, box x0 y0 x1 y1, six keypoints). Each variant warps every face into faceres'
224 px input with PIL, embeds it, and prints AUC, best balanced accuracy and TAR@FAR=1e-3
on lfw-dev/pairs.tsv. Results are recorded in tools/README.md.

Usage: python tools/align_experiments.py DETS.tsv LFW_DIR VARIANT [VARIANT ...]
VARIANT: sim4:ZOOM:SHIFT | sim3:ZOOM:SHIFT | upright:ZOOM:SHIFT, suffix +flip to average with the mirror image.
"""
import csv
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

TEMPLATE = np.array([(38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (56.1396, 92.2848)])
MEANS = np.array([103.939, 116.779, 123.68], np.float32)


def similarity(src, dst):
    """Least-squares similarity mapping src points onto dst points, as a 2x3 matrix."""
    sm, dm = src.mean(0), dst.mean(0)
    s, d = src - sm, dst - dm
    den = (s ** 2).sum()
    a = (s * d).sum() / den
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / den
    m = np.array([[a, -b, 0], [b, a, 0]], float)
    m[:, 2] = dm - m[:, :2] @ sm
    return m


def warp(img, kps, box, kind, zoom, shift):
    tmpl = 112 + (TEMPLATE - 56) * 2 * zoom + np.array([0, shift * 224])
    if kind == "sim4":
        m = similarity(tmpl, kps[:4])
    elif kind == "sim3":  # eyes + mouth only
        idx = [0, 1, 3]
        m = similarity(tmpl[idx], kps[idx])
    elif kind == "upright":  # no rotation: scale and centre from the similarity fit
        m = similarity(tmpl, kps[:4])
        s = np.hypot(m[0, 0], m[1, 0])
        m[:, :2] = [[s, 0], [0, s]]
        m[:, 2] = kps[:4].mean(0) - s * tmpl.mean(0)
    elif kind == "box":  # square crop around the detector box: side = box side / zoom
        x0, y0, x1, y1 = box
        side = max(x1 - x0, y1 - y0) / zoom
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + shift * side
        s = side / 224
        m = np.array([[s, 0, cx - side / 2], [0, s, cy - side / 2]])
    elif kind == "boxroll":  # box centre and size, rotation from the eye line
        x0, y0, x1, y1 = box
        side = max(x1 - x0, y1 - y0) / zoom
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + shift * side
        ang = np.arctan2(kps[1, 1] - kps[0, 1], kps[1, 0] - kps[0, 0])
        s = side / 224
        ca, sa = np.cos(ang) * s, np.sin(ang) * s
        m = np.array([[ca, -sa, 0], [sa, ca, 0]])
        m[:, 2] = np.array([cx, cy]) - m[:, :2] @ np.array([112, 112])
    else:
        raise ValueError(kind)
    # PIL wants output->input coefficients with pixel centres at +0.5.
    a, b, c = m[0]
    d, e, f = m[1]
    c += 0.5 * (a + b) - 0.5
    f += 0.5 * (d + e) - 0.5
    return img.transform((224, 224), Image.AFFINE, (a, b, c, d, e, f), resample=Image.BILINEAR)


def auc(pos, neg):
    allv = np.concatenate([pos, neg])
    r = allv.argsort().argsort() + 1
    return (r[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def main():
    dets_file, root = sys.argv[1], sys.argv[2]
    dets = {}
    for row in csv.reader(open(dets_file), delimiter="\t"):
        if len(row) > 2:
            dets[row[0]] = (np.array(row[6:18], float).reshape(6, 2), np.array(row[2:6], float))
    pairs = list(csv.DictReader(open(root + "/pairs.tsv"), delimiter="\t"))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "faceres.onnx"), opts)
    paths = sorted({p["path_a"] for p in pairs} | {p["path_b"] for p in pairs})
    for variant in sys.argv[3:]:
        flip = variant.endswith("+flip")
        kind, zoom, shift = variant.replace("+flip", "").split(":")
        emb = {}
        for p in paths:
            if p not in dets:
                continue
            img = Image.open(f"{root}/{p}").convert("RGB")
            crop = warp(img, dets[p][0], dets[p][1], kind, float(zoom), float(shift))
            views = [crop, crop.transpose(Image.FLIP_LEFT_RIGHT)] if flip else [crop]
            x = np.stack([np.asarray(v, np.float32)[:, :, ::-1] - MEANS for v in views])
            e = sum(sess.run(None, {"input_1:0": x[i : i + 1]})[0][0] for i in range(len(views)))
            emb[p] = e / np.linalg.norm(e)
        sc = np.array([emb[p["path_a"]] @ emb[p["path_b"]] if p["path_a"] in emb and p["path_b"] in emb else (-1 if p["same"] == "1" else 2) for p in pairs])
        y = np.array([p["same"] == "1" for p in pairs])
        neg = np.sort(sc[~y])[::-1]
        thr = neg[int(len(neg) * 1e-3)]
        ts = np.unique(sc)
        bal = max(((sc[y] >= t).mean() + (sc[~y] < t).mean()) / 2 for t in ts)
        if os.environ.get("SHOW_WORST"):
            order = np.argsort(sc)
            print("weakest same pairs:", [(pairs[i]["path_a"].split("/")[-1], pairs[i]["path_b"].split("/")[-1], round(float(sc[i]), 3)) for i in order if y[i]][:8])
            print("strongest different pairs:", [(pairs[i]["path_a"].split("/")[-1], pairs[i]["path_b"].split("/")[-1], round(float(sc[i]), 3)) for i in order[::-1] if not y[i]][:6])
        print(f"{variant}\tauc {auc(sc[y], sc[~y]):.5f}\tbalanced {bal * 100:.2f}%\ttar@1e-3 {(sc[y] > thr).mean() * 100:.2f}%", flush=True)


if __name__ == "__main__":
    main()
