#!/usr/bin/env python3
"""Rebuild the face-api.js recognition network (dlib's ResNet, 128-d) as ONNX.

Source: the npm package @vladmandic/face-api@1.7.15 (MIT), `model/face_recognition_model*`
(TF.js weights manifest, uint8-quantised) and the layout in `src/faceRecognitionNet/`.
The weights stay uint8 in the file; each is dequantised by Cast, Mul and Add nodes that
tract folds into float32 constants when it optimises the plan. Input 1x150x150x3 RGB
(0-255, NHWC), output 1x128. The graph subtracts the mean RGB and divides by 255 itself.
`tools/faceapi_experiment.py` holds an independent numpy forward pass to check it against.

Usage: python tools/convert_faceapi.py package/model OUT.onnx
Needs onnx and numpy (tools/requirements-convert.txt).
"""
import json
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MEAN_RGB = [122.782, 117.001, 104.298]


class Graph:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, array, base="c"):
        t = numpy_helper.from_array(np.asarray(array), self.name(base))
        self.inits.append(t)
        return t.name

    def op(self, kind, inputs, base=None, **attrs):
        out = self.name(base or kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out


def load(model_dir, g):
    """Every weight as a graph value: uint8 initializer -> Cast -> Mul(scale) -> Add(min)."""
    manifest = json.load(open(f"{model_dir}/face_recognition_model-weights_manifest.json"))
    weights = {}
    for group in manifest:
        data = b"".join(open(f"{model_dir}/{p}", "rb").read() for p in group["paths"])
        off = 0
        for spec in group["weights"]:
            shape = spec["shape"]
            n = int(np.prod(shape)) if shape else 1
            q = spec.get("quantization")
            if q:
                raw = np.frombuffer(data, dtype=np.uint8, count=n, offset=off).reshape(shape)
                off += n
                value = g.op("Cast", [g.const(raw, "q")], to=TensorProto.FLOAT)
                value = g.op("Mul", [value, g.const(np.float32(q["scale"]))])
                value = g.op("Add", [value, g.const(np.float32(q["min"]))])
            else:
                raw = np.frombuffer(data, dtype=np.float32, count=n, offset=off).reshape(shape)
                off += 4 * n
                value = g.const(raw.astype(np.float32), "w")
            weights[spec["name"]] = (value, shape)
    return weights


def conv_layer(g, w, x, name, stride, relu, same):
    filters, shape = w[name + "/conv/filters"]
    kh = shape[0]
    kernel = g.op("Transpose", [filters], perm=[3, 2, 0, 1])  # HWIO -> OIHW
    pad = [kh // 2] * 4 if same else [0, 0, 0, 0]
    out = g.op("Conv", [x, kernel], strides=[stride, stride], pads=pad, kernel_shape=[kh, kh])
    per_channel = lambda v: g.op("Reshape", [v, g.const(np.array([1, -1, 1, 1], np.int64))])
    out = g.op("Add", [out, per_channel(w[name + "/conv/bias"][0])])
    out = g.op("Mul", [out, per_channel(w[name + "/scale/weights"][0])])
    out = g.op("Add", [out, per_channel(w[name + "/scale/biases"][0])])
    return g.op("Relu", [out]) if relu else out


def residual(g, w, x, name):
    out = conv_layer(g, w, x, name + "/conv1", 1, True, True)
    out = conv_layer(g, w, out, name + "/conv2", 1, False, True)
    return g.op("Relu", [g.op("Add", [out, x])])


def residual_down(g, w, x, name, size, channels_in, channels_out):
    """`size` is the input side; returns the output and its side."""
    out = conv_layer(g, w, x, name + "/conv1", 2, True, False)
    out = conv_layer(g, w, out, name + "/conv2", 1, False, True)
    conv_side, pool_side = (size - 3) // 2 + 1, size // 2
    pooled = g.op("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
    if conv_side != pool_side:  # face-api pads the conv branch with one zero row and column
        out = g.op("Pad", [out, g.const(np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64))])
    if channels_in != channels_out:  # and the shortcut with zero channels
        pooled = g.op("Pad", [pooled, g.const(np.array([0, 0, 0, 0, 0, channels_out - channels_in, 0, 0], np.int64))])
    return g.op("Relu", [g.op("Add", [out, pooled])]), pool_side


def build(model_dir):
    g = Graph()
    w = load(model_dir, g)
    x = g.op("Transpose", ["input"], perm=[0, 3, 1, 2])
    x = g.op("Sub", [x, g.const(np.array(MEAN_RGB, np.float32).reshape(1, 3, 1, 1))])
    x = g.op("Div", [x, g.const(np.float32(255.0))])
    x = conv_layer(g, w, x, "conv32_down", 2, True, False)  # 150 -> 72
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2])  # 72 -> 35
    for n in ["conv32_1", "conv32_2", "conv32_3"]:
        x = residual(g, w, x, n)
    x, side = residual_down(g, w, x, "conv64_down", 35, 32, 64)
    for n in ["conv64_1", "conv64_2", "conv64_3"]:
        x = residual(g, w, x, n)
    x, side = residual_down(g, w, x, "conv128_down", side, 64, 128)
    for n in ["conv128_1", "conv128_2"]:
        x = residual(g, w, x, n)
    x, side = residual_down(g, w, x, "conv256_down", side, 128, 256)
    for n in ["conv256_1", "conv256_2"]:
        x = residual(g, w, x, n)
    x, side = residual_down(g, w, x, "conv256_down_out", side, 256, 256)
    x = g.op("ReduceMean", [x], axes=[2, 3], keepdims=0)
    out = g.op("MatMul", [x, w["fc"][0]])
    g.nodes.append(helper.make_node("Identity", [out], ["descriptor"]))
    graph = helper.make_graph(
        g.nodes,
        "faceapi_recognition",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 150, 150, 3])],
        [helper.make_tensor_value_info("descriptor", TensorProto.FLOAT, [1, 128])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="likeness")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    onnx.save(build(sys.argv[1]), sys.argv[2])
