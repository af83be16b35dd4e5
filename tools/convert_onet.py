#!/usr/bin/env python3
"""MTCNN's output network (ONet) as ONNX, from facenet-pytorch's weights, without torch.

facenet-pytorch 2.6.0 (PyPI, MIT) ships `facenet_pytorch/data/onet.pt`, a legacy (non-zip)
PyTorch state dict; its weights were ported from davidsandberg/facenet (MIT), which ported
the MTCNN authors' Caffe model. This reads that file with pickle and numpy and writes the
same network (facenet_pytorch.models.mtcnn.ONet) as an ONNX graph for tract:
input 1x3x48x48, (RGB - 127.5) / 128; outputs `box` (4: box corrections, in box sides),
`points` (10: five x then five y, in box sides), `prob` (2: softmax, [1] = face).

Usage:
  pip download --no-deps facenet-pytorch==2.6.0 && unzip -o facenet_pytorch-2.6.0-py3-none-any.whl 'facenet_pytorch/data/onet.pt'
  python tools/convert_onet.py facenet_pytorch/data/onet.pt models/mtcnn-onet.onnx
Needs numpy and onnx (tools/requirements-convert.txt).
"""
import collections
import pickle
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def load_legacy_state_dict(path):
    """{name: array} from a legacy torch.save file: magic, protocol, sys info, the pickled
    dict (tensors as persistent ids into storages), the storage keys, then each storage's
    element count (int64) and little-endian data."""
    with open(path, "rb") as f:
        for _ in range(3):
            pickle.load(f)

        class Storage:
            def __init__(self, key, dtype):
                self.key, self.dtype = key, dtype

        class Unpickler(pickle.Unpickler):
            def find_class(self, module, name):
                if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                    return lambda storage, offset, size, stride, *_: (storage, offset, tuple(size), tuple(stride))
                if module == "torch" and name.endswith("Storage"):
                    return name
                if (module, name) == ("collections", "OrderedDict"):
                    return collections.OrderedDict
                raise pickle.UnpicklingError(f"unexpected {module}.{name}")

            def persistent_load(self, pid):
                _, storage_type, key, _location, _numel, _view = pid
                return Storage(key, {"FloatStorage": np.float32}[storage_type])

        tensors = Unpickler(f).load()
        data = {}
        for key in pickle.load(f):
            (count,) = struct.unpack("<q", f.read(8))
            data[key] = f.read(count * 4)
    out = collections.OrderedDict()
    for name, (storage, offset, size, stride) in tensors.items():
        flat = np.frombuffer(data[storage.key], dtype=storage.dtype)
        strides = [s * flat.itemsize for s in stride]
        out[name] = np.array(np.lib.stride_tricks.as_strided(flat[offset:], shape=size, strides=strides))
    return out


def build(sd, path):
    inits, nodes = [], []

    def weight(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr.astype(np.float32)), name))
        return name

    x = "input"

    def conv(i, k):
        nonlocal x
        w, b = weight(f"conv{i}.w", sd[f"conv{i}.weight"]), weight(f"conv{i}.b", sd[f"conv{i}.bias"])
        nodes.append(helper.make_node("Conv", [x, w, b], [f"conv{i}"], kernel_shape=[k, k]))
        slope = weight(f"prelu{i}", sd[f"prelu{i}.weight"].reshape(-1, 1, 1))
        nodes.append(helper.make_node("PRelu", [f"conv{i}", slope], [f"act{i}"]))
        x = f"act{i}"

    def pool(i, k, s):
        nonlocal x
        nodes.append(helper.make_node("MaxPool", [x], [f"pool{i}"], kernel_shape=[k, k], strides=[s, s], ceil_mode=1))
        x = f"pool{i}"

    conv(1, 3), pool(1, 3, 2), conv(2, 3), pool(2, 3, 2), conv(3, 3), pool(3, 2, 2), conv(4, 2)
    # The Caffe original flattens width-major: ONet.forward permutes (0, 3, 2, 1) first.
    nodes.append(helper.make_node("Transpose", [x], ["wh"], perm=[0, 3, 2, 1]))
    nodes.append(helper.make_node("Flatten", ["wh"], ["flat"], axis=1))
    w5, b5 = weight("dense5.w", sd["dense5.weight"]), weight("dense5.b", sd["dense5.bias"])
    nodes.append(helper.make_node("Gemm", ["flat", w5, b5], ["dense5"], transB=1))
    nodes.append(helper.make_node("PRelu", ["dense5", weight("prelu5", sd["prelu5.weight"])], ["act5"]))
    for name, out in [("dense6_1", "logits"), ("dense6_2", "box"), ("dense6_3", "points")]:
        w, b = weight(f"{name}.w", sd[f"{name}.weight"]), weight(f"{name}.b", sd[f"{name}.bias"])
        nodes.append(helper.make_node("Gemm", ["act5", w, b], [out], transB=1))
    nodes.append(helper.make_node("Softmax", ["logits"], ["prob"], axis=1))
    graph = helper.make_graph(
        nodes,
        "mtcnn_onet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 48, 48])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, k]) for n, k in [("box", 4), ("points", 10), ("prob", 2)]],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="likeness tools/convert_onet.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


if __name__ == "__main__":
    build(load_legacy_state_dict(sys.argv[1]), sys.argv[2])
