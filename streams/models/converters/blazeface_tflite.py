"""MediaPipe BlazeFace ``.tflite`` -> ONNX with a dynamic batch axis.

``tflite2onnx`` produces a batch-1 NCHW graph; it is then patched so the batch axis is symbolic:
graph inputs/outputs get ``dim_param="batch"``; ``Reshape`` targets that hard-code 1 on axis 0 get
0 ("copy the input dim"; -1 is taken, the targets already hold a -1); ``Resize`` nodes with
constant ``sizes`` switch to constant ``scales``; stale value_info is dropped and shapes
re-inferred. Outputs are renamed ``regressors`` [batch, anchors, 16] and ``scores``
[batch, anchors, 1]. Batch 8 gives exactly the outputs of 8 batch-1 runs.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

BATCH_DIM = "batch"
OUTPUT_NAMES = ("regressors", "scores")


def tflite_to_onnx(tflite_path: Path) -> onnx.ModelProto:
    """Run ``tflite2onnx`` (batch-1, NCHW) and return the loaded model."""
    import tflite2onnx  # offline-only dependency, untyped (see pyproject mypy overrides)

    # fp16 weights are folded to fp32 by tflite2onnx; silence its "not tested" noise.
    logging.getLogger("tflite2onnx").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "raw.onnx"
        tflite2onnx.convert(str(tflite_path), str(out))
        return onnx.load(str(out))


def _initializers(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    """Map initializer name -> tensor."""
    return {t.name: t for t in graph.initializer}


def _replace_initializer(graph: onnx.GraphProto, name: str, value: np.ndarray) -> None:
    """Overwrite the initializer ``name`` in place with ``value``."""
    for tensor in graph.initializer:
        if tensor.name == name:
            tensor.CopyFrom(numpy_helper.from_array(value, name))
            return
    raise KeyError(name)


def _add_initializer(graph: onnx.GraphProto, name: str, value: np.ndarray) -> str:
    """Append a new constant initializer and return its name."""
    graph.initializer.append(numpy_helper.from_array(value, name))
    return name


def make_io_dynamic(graph: onnx.GraphProto) -> None:
    """Set axis 0 of every graph input and output to the symbolic ``batch`` dim."""
    for value in list(graph.input) + list(graph.output):
        dim0 = value.type.tensor_type.shape.dim[0]
        dim0.ClearField("dim_value")
        dim0.dim_param = BATCH_DIM


def patch_reshapes(graph: onnx.GraphProto) -> int:
    """Rewrite constant Reshape targets ``[1, ...]`` to ``[0, ...]``; return count."""
    inits = _initializers(graph)
    patched: set[str] = set()
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] not in inits:
            continue
        name = node.input[1]
        shape = numpy_helper.to_array(inits[name]).copy()
        if name not in patched and shape.size > 0 and shape[0] == 1:
            shape[0] = 0
            _replace_initializer(graph, name, shape)
            patched.add(name)
    return len(patched)


def _static_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Infer the (batch-1) static shape of every intermediate tensor."""
    inferred = shape_inference.infer_shapes(model)
    values = list(inferred.graph.value_info) + list(inferred.graph.input)
    return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}


def patch_resizes(model: onnx.ModelProto) -> int:
    """Turn constant ``sizes`` inputs of Resize nodes into ``scales``; return count."""
    graph = model.graph
    shapes = _static_shapes(model)
    inits = _initializers(graph)
    empty = ""
    count = 0
    for node in graph.node:
        if node.op_type != "Resize" or len(node.input) < 4 or node.input[3] not in inits:
            continue
        sizes = numpy_helper.to_array(inits[node.input[3]]).astype(np.float32)
        in_shape = np.asarray(shapes[node.input[0]], np.float32)
        if in_shape.size != sizes.size or np.any(in_shape[2:] <= 0):
            raise ValueError(f"cannot infer input shape of Resize {node.name!r}")
        scales = np.concatenate([[1.0, 1.0], sizes[2:] / in_shape[2:]]).astype(np.float32)
        if not empty:
            empty = _add_initializer(graph, "dyn_empty_f32", np.zeros(0, np.float32))
        scales_name = _add_initializer(graph, f"dyn_scales_{count}", scales)
        del node.input[1:]
        node.input.extend([empty, scales_name])
        count += 1
    return count


def prune_initializers(graph: onnx.GraphProto) -> int:
    """Drop unused initializers and sort the rest by name (byte-reproducible output).

    Returns how many were removed.
    """
    used = {name for node in graph.node for name in node.input}
    kept = sorted((t for t in graph.initializer if t.name in used), key=lambda t: t.name)
    removed = len(graph.initializer) - len(kept)
    copies = [onnx.TensorProto.FromString(t.SerializeToString()) for t in kept]
    del graph.initializer[:]
    graph.initializer.extend(copies)
    return removed


def rename_outputs(graph: onnx.GraphProto, names: tuple[str, ...] = OUTPUT_NAMES) -> None:
    """Give the graph outputs stable names (the tflite names differ per variant)."""
    for value, new in zip(graph.output, names, strict=True):
        old = value.name
        for node in graph.node:
            node.output[:] = [new if o == old else o for o in node.output]
            node.input[:] = [new if i == old else i for i in node.input]
        value.name = new


def make_batch_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a copy of ``model`` whose batch axis is dynamic (see module doc)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    patch_resizes(out)
    patch_reshapes(out.graph)
    prune_initializers(out.graph)
    rename_outputs(out.graph)
    del out.graph.value_info[:]
    make_io_dynamic(out.graph)
    out = shape_inference.infer_shapes(out)
    onnx.checker.check_model(out)
    return out


def convert(source: Path, target: Path) -> None:
    """Convert the .tflite at ``source`` and write the dynamic-batch ONNX model to ``target``."""
    onnx.save(make_batch_dynamic(tflite_to_onnx(source)), str(target))
