#!/usr/bin/env python3
"""Candidate embedder: the face-api.js recognition network (dlib's ResNet, 128-d), aligned
from our BlazeFace keypoints, on a pairs file. An experiment for the vision engine; nothing
here ships.

The network runs in numpy, written from the layout in the package's
src/faceRecognitionNet/ (conv + bias + per-channel scale, residual blocks, average-pool
shortcuts, global mean, fc) with its uint8-quantised weights. Faces are aligned by a
least-squares similarity from our four keypoints (eyes, nose tip, mouth centre) onto dlib's
mean face (get_face_chip_details, 150 px, padding 0.25: eye centres, nose tip point 30,
mouth-corner midpoint), bilinear, and the descriptor is flip-averaged.

Usage:
  npm pack @vladmandic/face-api@1.7.15 && tar xzf vladmandic-face-api-1.7.15.tgz
  cargo run --release --example dump_detections -- DATA/MANIFEST.tsv > detections.tsv
  python tools/faceapi_experiment.py package/model detections.tsv DATA/ DATA/pairs.tsv
Needs numpy and pillow (tools/requirements-bench.txt).
"""
import csv
import json
import sys

import numpy as np
from PIL import Image


def load_weights(ROOT):
    manifest = json.load(open(ROOT + 'face_recognition_model-weights_manifest.json'))
    w = {}
    for group in manifest:
        data = b''.join(open(ROOT + p, 'rb').read() for p in group['paths'])
        off = 0
        for spec in group['weights']:
            n = int(np.prod(spec['shape'])) if spec['shape'] else 1
            q = spec.get('quantization')
            if q:
                dt = {'uint8': np.uint8, 'uint16': np.uint16}[q['dtype']]
                raw = np.frombuffer(data, dtype=dt, count=n, offset=off)
                off += n * raw.itemsize
                arr = raw.astype(np.float32) * np.float32(q['scale']) + np.float32(q['min'])
            else:
                arr = np.frombuffer(data, dtype=np.float32, count=n, offset=off).copy()
                off += n * 4
            w[spec['name']] = arr.reshape(spec['shape'])
    return w

def conv2d(x, f, stride, padding):
    # x: HxWxC, f: kh x kw x C x O (TF layout)
    kh, kw, c, o = f.shape
    H, W, _ = x.shape
    if padding == 'same':
        oh, ow = -(-H // stride), -(-W // stride)
        ph = max((oh - 1) * stride + kh - H, 0); pw = max((ow - 1) * stride + kw - W, 0)
        x = np.pad(x, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (H - kh) // stride + 1, (W - kw) // stride + 1
    cols = np.empty((oh, ow, kh, kw, c), np.float32)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j, :] = x[i:i + stride * oh:stride, j:j + stride * ow:stride, :]
    return (cols.reshape(oh * ow, kh * kw * c) @ f.reshape(kh * kw * c, o)).reshape(oh, ow, o)

def conv_layer(x, w, name, stride, relu, padding='same'):
    out = conv2d(x, w[name + '/conv/filters'], stride, padding) + w[name + '/conv/bias']
    out = out * w[name + '/scale/weights'] + w[name + '/scale/biases']
    return np.maximum(out, 0) if relu else out

def pool(x, k, s, op):
    H, W, C = x.shape
    oh, ow = (H - k) // s + 1, (W - k) // s + 1
    stack = np.stack([x[i:i + s * oh:s, j:j + s * ow:s, :] for i in range(k) for j in range(k)])
    return stack.max(0) if op == 'max' else stack.mean(0)

def residual(x, w, name):
    out = conv_layer(x, w, name + '/conv1', 1, True)
    out = conv_layer(out, w, name + '/conv2', 1, False)
    return np.maximum(out + x, 0)

def residual_down(x, w, name):
    out = conv_layer(x, w, name + '/conv1', 2, True, 'valid')
    out = conv_layer(out, w, name + '/conv2', 1, False)
    pooled = pool(x, 2, 2, 'avg')
    if pooled.shape[:2] != out.shape[:2]:
        out = np.pad(out, ((0, 1), (0, 1), (0, 0)))
    if pooled.shape[2] != out.shape[2]:
        pooled = np.concatenate([pooled, np.zeros_like(pooled)], 2)
    return np.maximum(out + pooled, 0)

def descriptor(w, rgb150):
    x = (rgb150.astype(np.float32) - np.array([122.782, 117.001, 104.298], np.float32)) / 255.0
    out = conv_layer(x, w, 'conv32_down', 2, True, 'valid')
    out = pool(out, 3, 2, 'max')
    for n in ['conv32_1', 'conv32_2', 'conv32_3']: out = residual(out, w, n)
    out = residual_down(out, w, 'conv64_down')
    for n in ['conv64_1', 'conv64_2', 'conv64_3']: out = residual(out, w, n)
    out = residual_down(out, w, 'conv128_down')
    for n in ['conv128_1', 'conv128_2']: out = residual(out, w, n)
    out = residual_down(out, w, 'conv256_down')
    for n in ['conv256_1', 'conv256_2']: out = residual(out, w, n)
    out = residual_down(out, w, 'conv256_down_out')
    return out.mean((0, 1)) @ w['fc']


# dlib's mean face in a 150 px chip with padding 0.25: (0.25 + p) / 1.5 * 150.
TEMPLATE = np.array([(47.55, 46.60), (100.48, 46.60), (74.01, 76.56), (74.01, 103.02)])


def similarity(src, dst):
    """Least-squares similarity mapping src points onto dst points, as complex a, t."""
    s = src[:, 0] + 1j * src[:, 1]
    d = dst[:, 0] + 1j * dst[:, 1]
    sm, dm = s.mean(), d.mean()
    a = ((d - dm) * np.conj(s - sm)).sum() / (np.abs(s - sm) ** 2).sum()
    return a, dm - a * sm


def chip(img, keypoints, template=TEMPLATE, size=150):
    """The `size` px face chip whose `template` points land on the keypoints (uint8 RGB)."""
    a, t = similarity(template, np.array(keypoints))
    coeffs = (a.real, -a.imag, t.real, a.imag, a.real, t.imag)  # output pixel -> input pixel
    return np.asarray(img.transform((size, size), Image.AFFINE, coeffs, resample=Image.BILINEAR))


def metrics(pos, neg):
    pos, neg = np.array(pos), np.array(neg)
    out = {"auc": float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())}
    for far in (1e-2, 1e-3):
        t = np.sort(neg)[::-1][int(np.floor(far * len(neg)))]
        out[f"tar_at_far_{far:g}"] = float((pos > t).mean())
    out["balanced"] = float(max(((pos >= t).mean() + (neg < t).mean()) / 2 for t in np.concatenate([pos, neg])))
    return out


def main(model_dir, detections, root, pairs):
    w = load_weights(model_dir.rstrip("/") + "/")
    vectors = {}
    for row in csv.reader(open(detections), delimiter="\t"):
        path, kps = row[0], [float(x) for x in row[6:14]]
        img = Image.open(root + path).convert("RGB")
        c = chip(img, list(zip(kps[0::2], kps[1::2])))
        v = descriptor(w, c) + descriptor(w, c[:, ::-1])
        vectors[path] = v / np.linalg.norm(v)
    pos, neg = [], []
    for r in csv.DictReader(open(pairs), delimiter="\t"):
        a, b = vectors.get(r["path_a"]), vectors.get(r["path_b"])
        same = r["same"] == "1"
        s = float(a @ b) if a is not None and b is not None else (-9.0 if same else 9.0)
        (pos if same else neg).append(s)
    print(json.dumps({"pairs": len(pos) + len(neg), "undetected": sum(1 for v in vectors.values() if v is None), **metrics(pos, neg)}))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
