"""Tiny synthesised ONNX models standing in for user-supplied ones (CLIP, ArcFace)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def write_embedder(path: Path, size: int, dim: int, seed: int = 0) -> None:
    """[N,3,size,size] -> mean colour -> linear -> [N,dim] named 'embedding' (not normalised)."""
    weights = np.random.default_rng(seed).normal(size=(3, dim)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["pixels"], ["mean"], axes=[2, 3], keepdims=0),
            helper.make_node("MatMul", ["mean", "w"], ["embedding"]),
        ],
        "tiny_embedder",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", 3, size, size])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", dim])],
        initializer=[numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def write_manifest(folder: Path, task: str, size: int) -> None:
    """A manifest for a user-supplied model whose ONNX file sits in its folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.toml").write_text(f'''
name = "{folder.name}"
version = "test-1"
task = "{task}"
license = "test"

[source]
file = "model.onnx"

[input]
name = "pixels"
size = [{size}, {size}]
resize = "stretch"

[outputs]
embedding = "embedding"
''')
