#!/usr/bin/env python3
"""Detect + align + embed for a 640x480 one-face photo: tract (the `likeness bench` command)
vs onnxruntime on the same ONNX files, both single-threaded, in one script run.

The onnxruntime side runs the same model calls the Rust pipeline makes for a 640x480 image
(full-range detector on the letterboxed image, short-range detector letterboxed and with a
1.6x margin, MTCNN's ONet twice on the face box, the dlib ResNet on the aligned crop and its
mirror), with PIL/numpy preprocessing.
The two engines alternate in rounds so that noise from other work on the machine lands on
both. Prints both medians and minima, the ratios, model bytes and load times.

Usage: python tools/bench_vision.py [PHOTO]   (default: a face from ../shared/data)
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODELS = os.path.join(ROOT, "models")
ROUNDS = 6
PER_ROUND = 10


def photo_640x480(src, dst):
    img = Image.open(src).convert("RGB")
    w, h = img.size
    scale = max(640 / w, 480 / h)
    img = img.resize((round(w * scale), round(h * scale)), Image.BILINEAR)
    left, top = (img.width - 640) // 2, (img.height - 480) // 2
    img.crop((left, top, left + 640, top + 480)).save(dst, quality=92)


def session(name):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    t = time.perf_counter()
    s = ort.InferenceSession(os.path.join(MODELS, name), opts, providers=["CPUExecutionProvider"])
    return s, (time.perf_counter() - t) * 1e3


def letterbox(img, out, pad=1.0):
    big = round(max(img.size) * pad)
    canvas = Image.new("RGB", (big, big))
    canvas.paste(img, ((big - img.width) // 2, (big - img.height) // 2))
    return (np.asarray(canvas.resize((out, out), Image.BILINEAR), np.float32) / 127.5 - 1.0)[None]


def onnxruntime_pipeline(full, short, onet, emb, img):
    """One detect + align + embed pass, the same model calls the Rust pipeline makes."""
    out = full.run(None, {"input:0": letterbox(img, 192).transpose(0, 3, 1, 2).copy()})[0][0]  # planar input
    short.run(None, {"input:0": letterbox(img, 128)})
    short.run(None, {"input:0": letterbox(img, 128, pad=1.6)})
    best = out[:, 0].argmax()
    r = out[best]
    side = max(img.size)
    cx = ((best % 48) + 0.5) / 48 * 192 + r[1]
    cy = ((best // 48) + 0.5) / 48 * 192 + r[2]
    s = side / 192
    x0, y0 = cx * s - (side - img.width) / 2, cy * s - (side - img.height) / 2
    # The landmark network, twice (the box, then the box it regresses), as the engine does.
    for _ in range(2):
        crop = img.transform((48, 48), Image.AFFINE, (r[3] * s / 48, 0, x0 - r[3] * s / 2, 0, r[3] * s / 48, y0 - r[3] * s / 2), Image.BILINEAR)
        onet.run(None, {"input": ((np.asarray(crop, np.float32) - 127.5) * 0.0078125).transpose(2, 0, 1)[None].copy()})
    face = img.transform((150, 150), Image.AFFINE, (r[3] * s / 150 * 1.4, 0, x0 - r[3] * s * 0.7, 0, r[3] * s / 150 * 1.4, y0 - r[3] * s * 0.7), Image.BILINEAR)
    x = np.asarray(face, np.float32)  # RGB 0..255: the graph normalises
    emb.run(None, {"input": x[None]})
    emb.run(None, {"input": x[:, ::-1][None].copy()})


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "data", "faces", "identities", "obama", "obama.jpg")
    (full, t_full), (short, t_short), (emb, t_emb) = session("blazeface-full.onnx"), session("blazeface-short.onnx"), session("faceapi-resnet.onnx")
    onet, t_onet = session("mtcnn-onet.onnx")
    binary = os.path.join(ROOT, "target", "release", "likeness")
    tract_ms, ort_ms, loads = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "photo.jpg")
        photo_640x480(src, path)
        img = Image.open(path).convert("RGB")
        # Alternate the engines round by round, so a noisy spell on a shared machine hits both.
        for _ in range(ROUNDS):
            run = subprocess.run([binary, "bench", "--image", path, "--iterations", str(PER_ROUND)], check=True, capture_output=True, text=True)
            tract = json.loads(run.stdout)
            tract_ms += tract["times_ms"]
            loads.append(tract["model_load_ms"])
            for i in range(PER_ROUND + 2):
                t = time.perf_counter()
                onnxruntime_pipeline(full, short, onet, emb, img)
                if i >= 2:  # warm-up, as the CLI does
                    ort_ms.append((time.perf_counter() - t) * 1e3)
    tract_median, ort_median = float(np.median(tract_ms)), float(np.median(ort_ms))
    sizes = {n: os.path.getsize(os.path.join(MODELS, n)) for n in ("blazeface-short.onnx", "blazeface-full.onnx", "mtcnn-onet.onnx", "faceapi-resnet.onnx")}
    print(f"640x480, {tract['faces']} face, one thread, {ROUNDS} alternating rounds of {PER_ROUND} runs each:")
    print(f"  tract (likeness)  median {tract_median:.1f} ms  min {min(tract_ms):.1f} ms   model load {np.median(loads):.0f} ms")
    print(f"  onnxruntime       median {ort_median:.1f} ms  min {min(ort_ms):.1f} ms   session load {t_full + t_short + t_emb + t_onet:.0f} ms")
    print(f"  ratio tract/onnxruntime {tract_median / ort_median:.2f}x (medians), {min(tract_ms) / min(ort_ms):.2f}x (minima)")
    print(f"  model bytes {sum(sizes.values())} ({', '.join(f'{k} {v}' for k, v in sizes.items())})")


if __name__ == "__main__":
    main()
