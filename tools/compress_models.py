#!/usr/bin/env python3
"""Store ONNX weights as float16 where that is exact, with a Cast back to float32 in the graph.

The TF.js sources ship faceres' weights as float16 and the detectors' weights happen to be
exactly representable too, so every float32 weight survives the round trip bit for bit:
the models compute exactly what they did (tract folds the Casts into float32 constants when
it optimises the plan) and the files are half the size. Refuses a model with any weight that
is not exact in float16, rather than changing its numbers.

Usage: python tools/compress_models.py models/*.onnx   (rewrites the files in place)
Needs: onnx and numpy (tools/requirements-convert.txt).
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SMALLEST = 16  # shape vectors and scalars stay float32: nothing to gain


def compress(path):
    model = onnx.load(path)
    graph = model.graph
    inputs = {i.name for i in graph.input}
    casts, initializers, saved = [], [], 0
    for init in graph.initializer:
        weights = numpy_helper.to_array(init)
        if weights.dtype != np.float32 or weights.size < SMALLEST or init.name in inputs:
            initializers.append(init)
            continue
        half = weights.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), weights):
            sys.exit(f"{path}: {init.name} is not exact in float16; leaving the model alone")
        stored = numpy_helper.from_array(half, init.name + "__f16")
        initializers.append(stored)
        casts.append(helper.make_node("Cast", [stored.name], [init.name], to=TensorProto.FLOAT, name=init.name + "__cast"))
        saved += weights.nbytes - half.nbytes
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    print(f"{path}: {len(casts)} weights as float16, {saved:,} bytes saved")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        compress(p)
