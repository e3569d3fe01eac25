"""dlib's face descriptor ResNet (``dlib_face_recognition_resnet_model_v1.dat``) -> one ONNX graph.

The file is read with ``dlib_format`` (numpy only, no dlib) and checked, layer by layer, against
``anet_type`` of dlib's examples/dnn_face_recognition_ex.cpp, because the file cannot say which
of its tag/skip layers is which, nor which tag an ``add_prev`` adds: the template does.

Input ``input`` [batch, 3, 150, 150] float32, RGB, already normalised as dlib's input layer does
((pixel - (122.782, 117.001, 104.298)) / 256); output ``embedding`` [batch, 128], the raw
descriptor: dlib does not L2-normalise it (norms come out near 1.3-1.5) and its "same person"
threshold of 0.6 is on these raw vectors.

dlib conventions that a naive port gets wrong (dlib/dnn/layers.h, dlib/cuda/cpu_dlib.cpp):

* a strided ``con``/``max_pool``/``avg_pool`` defaults to no padding (k/2 only at stride 1), so
  the 7x7/2 stem conv gives 72x72 and the 3x3/2 max pool 35x35;
* conv and pooling sizes are 1 + (n + 2p - k) // s, which is ONNX's floor mode, and dlib's
  pooling windows start at i * s - p like ONNX's, so they map 1:1;
* ``add_prev`` adds tensors of different shapes by zero-padding each, at the end of every
  dimension, to the larger size. The downsampling blocks add avg_pool 2x2/2 of the block input
  to the block output: where channels double (32->64->128->256) the pooled branch gets zero
  channels appended, and at even sizes the unpadded 3x3/2 conv and the 2x2/2 pool disagree
  (8x8 gives 3x3 vs 4x4, 4x4 gives 1x1 vs 2x2), so there the *conv* branch is zero-padded at the
  bottom/right; in the last block 3 of its 4 positions are zeros. 5 Pad nodes in all;
* every ``affine`` follows a ``con`` here and is folded into it (in float64, then float32).

The graph is 85 nodes (29 Conv, 29 Relu, 14 Add, 5 Pad, 4 AveragePool, MaxPool,
GlobalAveragePool, Flatten, MatMul), 22.4 MB. Measured when written on a 2-core CPU
(onnxruntime 1.31, dlib 20.0.1): conversion 0.08-0.25 s; against
``dlib.face_recognition_model_v1.compute_face_descriptor`` on an astronaut face chip, its mirror
and two non-face crops, max abs difference 3.6e-7 at batch 1 and at batch 3
(tests/models/test_dlib_resnet.py allows 1e-5); onnxruntime CPU 11-13 ms per chip at batch 1
and 8-10 ms at batch 8, against dlib's 80-115 ms.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import onnx
import structlog

from streams.models.converters.dlib_check import MEAN_RGB, NotCheckedError, check_against_dlib
from streams.models.converters.dlib_format import (
    AddPrev,
    Affine,
    Con,
    Fc,
    InputRGB,
    Layer,
    LossMetric,
    Pool,
    Relu,
    TagOrSkip,
    describe,
    read,
)
from streams.models.converters.onnx_graph import GraphBuilder

log = structlog.get_logger(__name__)

INPUT_SIZE: Final = 150
EMBEDDING_DIM: Final = 128
# anet_type's residual blocks from the input up: (filters, downsampling). alevel4 is three
# ares<32>, alevel3 ares_down<64> + three ares<64>, alevel2/alevel1 ares_down + two ares at
# 128/256, alevel0 one ares_down<256>.
BLOCKS: Final = (
    *((32, False),) * 3,
    (64, True),
    *((64, False),) * 3,
    (128, True),
    *((128, False),) * 2,
    (256, True),
    *((256, False),) * 2,
    (256, True),
)

Array = npt.NDArray[Any]
Shape = tuple[int, int, int]  # (channels, rows, cols); the batch axis stays symbolic


@dataclass(frozen=True)
class Tag:
    offset: int
    id: int


@dataclass(frozen=True)
class Skip:
    """``skipN``: the next layer reads the output of ``tagN`` instead of its predecessor."""

    offset: int
    id: int


@dataclass(frozen=True)
class AddTagged:
    """``add_prevN``: previous output + output of ``tagN``."""

    offset: int
    id: int


Step = Layer | Tag | Skip | AddTagged


@dataclass(frozen=True)
class _Expect:
    """One position of anet_type: the record kind, plus what must hold for its fields."""

    kind: type
    role: str
    filters: int = 0
    stride: int = 1
    pool: str = ""
    tag: int = 0


def _expected() -> Iterator[_Expect]:
    """anet_type, unrolled from the input up."""
    yield _Expect(InputRGB, "input")
    yield _Expect(Con, "stem conv", filters=32, stride=2)
    yield _Expect(Affine, "stem affine")
    yield _Expect(Relu, "stem relu")
    yield _Expect(Pool, "stem max_pool", pool="max", stride=2)
    for filters, down in BLOCKS:
        name = f"{'ares_down' if down else 'ares'}<{filters}>"
        yield _Expect(TagOrSkip, f"{name} tag1", tag=1)
        yield _Expect(Con, f"{name} conv a", filters=filters, stride=2 if down else 1)
        yield _Expect(Affine, f"{name} affine a")
        yield _Expect(Relu, f"{name} relu a")
        yield _Expect(Con, f"{name} conv b", filters=filters)
        yield _Expect(Affine, f"{name} affine b")
        if down:  # add_prev2<avg_pool<2,2,2,2,skip1<tag2<block>>>>
            yield _Expect(TagOrSkip, f"{name} tag2", tag=2)
            yield _Expect(TagOrSkip, f"{name} skip1", tag=-1)  # negative: a skip to tag1
            yield _Expect(Pool, f"{name} avg_pool", pool="avg", stride=2)
            yield _Expect(AddPrev, f"{name} add_prev2", tag=2)
        else:
            yield _Expect(AddPrev, f"{name} add_prev1", tag=1)
        yield _Expect(Relu, f"{name} relu")
    yield _Expect(Pool, "avg_pool_everything", pool="avg")
    yield _Expect(Fc, f"fc_no_bias<{EMBEDDING_DIM}>", filters=EMBEDDING_DIM)
    yield _Expect(LossMetric, "loss_metric")


def resolve(layers: list[Layer]) -> list[Step]:
    """Check ``layers`` against anet_type; name each tag/skip and each add_prev's tag."""
    expected = list(_expected())
    if len(layers) != len(expected):
        raise ValueError(f"expected {len(expected)} layers (anet_type), the file has {len(layers)}")
    steps: list[Step] = []
    for layer, want in zip(layers, expected, strict=True):
        where = f"{want.role}: got {describe(layer)}"
        if not isinstance(layer, want.kind):
            raise ValueError(f"{where}, expected {want.kind.__name__}")
        if isinstance(layer, Con):
            if layer.weight.shape[0] != want.filters or layer.stride != (want.stride,) * 2:
                raise ValueError(f"{where}, expected {want.filters} filters, stride {want.stride}")
        elif isinstance(layer, Pool):
            everything = want.role == "avg_pool_everything"
            if layer.kind != want.pool or (layer.window == (0, 0)) != everything:
                raise ValueError(f"{where}, expected a {want.pool} pool")
        elif isinstance(layer, Fc):
            if layer.weight.shape[1] != want.filters or layer.bias is not None:
                raise ValueError(f"{where}, expected fc_no_bias<{want.filters}>")
        elif isinstance(layer, InputRGB):
            # The graph leaves this normalisation to its caller, who hard-codes these values.
            size_ok = (layer.nr, layer.nc) == (INPUT_SIZE, INPUT_SIZE)
            if not size_ok or not np.allclose(layer.mean_rgb, MEAN_RGB, atol=1e-4):
                raise ValueError(f"{where}, expected {INPUT_SIZE}x{INPUT_SIZE}, mean {MEAN_RGB}")
        if isinstance(layer, TagOrSkip):
            tagged = Tag(layer.offset, want.tag) if want.tag > 0 else None
            steps.append(tagged or Skip(layer.offset, -want.tag))
        elif isinstance(layer, AddPrev):
            steps.append(AddTagged(layer.offset, want.tag))
        else:
            steps.append(layer)
    return steps


def _out_size(n: int, window: int, stride: int, pad: int) -> int:
    # dlib's formula (cpu_dlib.cpp, pooling and tensor_conv); ONNX floor mode agrees.
    return 1 + (n + 2 * pad - window) // stride


class _GraphBuilder(GraphBuilder):
    """dlib's layers as ONNX nodes; the caller tracks shapes."""

    def conv(self, x: str, shape: Shape, con: Con, affine: Affine | None) -> tuple[str, Shape]:
        weight = con.weight.astype(np.float64)
        bias = np.zeros(weight.shape[0]) if con.bias is None else con.bias.astype(np.float64)
        if affine is not None:
            gamma, beta = _per_channel(affine, weight.shape[0])
            weight = weight * gamma[:, None, None, None]
            bias = bias * gamma + beta
        filters, channels, kr, kc = weight.shape
        if channels != shape[0]:
            raise ValueError(f"con at byte {con.offset}: {channels} input channels, got {shape}")
        (sy, sx), (py, px) = con.stride, con.padding
        w = self.unique_constant("con.w", weight.astype(np.float32))
        b = self.unique_constant("con.b", bias.astype(np.float32))
        y = self.node(
            "Conv",
            [x, w, b],
            "con",
            kernel_shape=[kr, kc],
            strides=[sy, sx],
            pads=[py, px, py, px],
        )
        return y, (filters, _out_size(shape[1], kr, sy, py), _out_size(shape[2], kc, sx, px))

    def affine(self, x: str, shape: Shape, affine: Affine) -> str:
        """An affine layer with no conv to fold into: y = x * gamma + beta."""
        gamma, beta = _per_channel(affine, shape[0])
        g = self.unique_constant("affine.gamma", gamma.astype(np.float32).reshape(1, -1, 1, 1))
        b = self.unique_constant("affine.beta", beta.astype(np.float32).reshape(1, -1, 1, 1))
        return self.node("Add", [self.node("Mul", [x, g], "affine.mul"), b], "affine.add")

    def pool(self, x: str, shape: Shape, pool: Pool) -> tuple[str, Shape]:
        if pool.window == (0, 0):
            op = "GlobalMaxPool" if pool.kind == "max" else "GlobalAveragePool"
            return self.node(op, [x], "pool"), (shape[0], 1, 1)
        (kr, kc), (sy, sx), (py, px) = pool.window, pool.stride, pool.padding
        # Padding is left out of dlib's averages (subm_clipped): ONNX's count_include_pad=0.
        y = self.node(
            "MaxPool" if pool.kind == "max" else "AveragePool",
            [x],
            f"{pool.kind}_pool",
            kernel_shape=[kr, kc],
            strides=[sy, sx],
            pads=[py, px, py, px],
        )
        return y, (shape[0], _out_size(shape[1], kr, sy, py), _out_size(shape[2], kc, sx, px))

    def pad_to(self, x: str, shape: Shape, target: Shape) -> str:
        """Zero-pad at the end of C, H, W, as dlib's tt::add does for mismatched shapes."""
        if shape == target:
            return x
        ends = [t - s for s, t in zip(shape, target, strict=True)]
        pads = self.unique_constant("pads", np.array([0, 0, 0, 0, 0, *ends], dtype=np.int64))
        return self.node("Pad", [x, pads], "add_prev.pad")

    def add(self, a: tuple[str, Shape], b: tuple[str, Shape]) -> tuple[str, Shape]:
        target = tuple(max(p, q) for p, q in zip(a[1], b[1], strict=True))
        shape: Shape = (target[0], target[1], target[2])
        pa, pb = self.pad_to(a[0], a[1], shape), self.pad_to(b[0], b[1], shape)
        return self.node("Add", [pa, pb], "add_prev"), shape


def _per_channel(affine: Affine, channels: int) -> tuple[Array, Array]:
    if not affine.conv_mode or affine.gamma.size != channels:
        raise ValueError(
            f"affine at byte {affine.offset}: expected {channels} per-channel values in conv "
            f"mode, got gamma {affine.gamma.shape} (conv mode: {affine.conv_mode})"
        )
    return affine.gamma.reshape(-1).astype(np.float64), affine.beta.reshape(-1).astype(np.float64)


def _emit(g: _GraphBuilder, steps: list[Step]) -> tuple[str, int]:
    """Walk the resolved layers from the input up; return the output name and width."""
    x, shape = "input", (3, INPUT_SIZE, INPUT_SIZE)
    tags: dict[int, tuple[str, Shape]] = {}
    width = 0
    i = 0
    while i < len(steps):
        step = steps[i]
        i += 1
        if isinstance(step, InputRGB | LossMetric):
            # the input normalisation is the caller's job; loss_metric passes the fc through
            continue
        if isinstance(step, Con):
            nxt = steps[i] if i < len(steps) else None
            fold = nxt if isinstance(nxt, Affine) else None
            i += fold is not None
            x, shape = g.conv(x, shape, step, fold)
        elif isinstance(step, Affine):
            x = g.affine(x, shape, step)
        elif isinstance(step, Relu):
            x = g.node("Relu", [x], "relu")
        elif isinstance(step, Pool):
            x, shape = g.pool(x, shape, step)
        elif isinstance(step, Tag):
            tags[step.id] = (x, shape)
        elif isinstance(step, Skip | AddTagged):
            if step.id not in tags:
                raise ValueError(f"byte {step.offset}: tag{step.id} was never set")
            if isinstance(step, Skip):
                x, shape = tags[step.id]
            else:
                x, shape = g.add((x, shape), tags[step.id])
        elif isinstance(step, Fc):
            inputs, width = step.weight.shape
            if inputs != shape[0] * shape[1] * shape[2]:
                raise ValueError(f"fc at byte {step.offset}: {inputs} inputs, got {shape}")
            # dlib flattens k, nr, nc in row-major order, as Flatten does on NCHW.
            flat = g.node("Flatten", [x], "flatten", axis=1)
            x = g.node("MatMul", [flat, g.unique_constant("fc.w", step.weight)], "fc")
            if step.bias is not None:
                x = g.node("Add", [x, g.unique_constant("fc.b", step.bias)], "fc.bias")
        else:
            raise ValueError(f"byte {step.offset}: no ONNX mapping for {type(step).__name__}")
    return x, width


def build_model(layers: list[Layer]) -> onnx.ModelProto:
    """Build and check the ONNX model from the records ``dlib_format.read`` returned."""
    g = _GraphBuilder()
    last, width = _emit(g, resolve(layers))
    if not g.nodes or g.nodes[-1].output[0] != last or width == 0:
        raise ValueError("the network does not end in its fc layer")
    # Renaming the fc's output beats an Identity node just for the name.
    g.nodes[-1].output[0] = g.nodes[-1].name = "embedding"
    return g.model(
        "dlib_face_recognition_resnet_model_v1",
        {"input": ["batch", 3, INPUT_SIZE, INPUT_SIZE]},
        {"embedding": ["batch", width]},
        "darkroom-dlib-resnet-convert",
    )


def convert(source: Path, target: Path) -> None:
    """Read the dlib network at ``source``, write the ONNX model to ``target``, and check it
    against dlib itself where dlib is installed (``make install`` installs it)."""
    onnx.save_model(build_model(read(source)), str(target))
    try:
        check_against_dlib(source, target)
    except NotCheckedError as missing:
        log.warning("not checked against dlib", why=str(missing))
