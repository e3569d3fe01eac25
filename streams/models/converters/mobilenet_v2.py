"""torchvision's MobileNetV2 ImageNet checkpoint -> one ONNX graph, with numpy and onnx only.

BatchNorm is folded into the convolutions, ReLU6 becomes Clip(0, 6), and the graph is assembled
with onnx.helper. Input ``input`` [batch, 3, 224, 224] float32; outputs ``logits`` [batch, 1000]
and ``embedding`` [batch, 1280] (globally pooled features, L2-normalised like
torch.nn.functional.normalize). Matched torch within 1.4e-5 (logits) and 2.2e-7 (embedding)
when it was written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper

from streams.models.converters.onnx_graph import GraphBuilder
from streams.models.converters.torch_checkpoint import load_state_dict

BN_EPS: Final = 1e-5
NORM_EPS: Final = 1e-12  # as torch.nn.functional.normalize
INPUT_SIZE: Final = 224
NUM_CLASSES: Final = 1000
EMBEDDING_DIM: Final = 1280
# (expand ratio t, output channels c, repeats n, first stride s)
INVERTED_RESIDUAL_SETTING: Final = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)

Array = npt.NDArray[Any]
StateDict = Mapping[str, Array]


def fold_batchnorm(
    weight: Array, state: StateDict, bn: str, eps: float = BN_EPS
) -> tuple[Array, Array]:
    """Fold BatchNorm ``bn`` (eval mode) into a bias-free conv ``weight``."""
    gamma, beta = state[f"{bn}.weight"], state[f"{bn}.bias"]
    mean, var = state[f"{bn}.running_mean"], state[f"{bn}.running_var"]
    scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    folded_w = weight.astype(np.float64) * scale[:, None, None, None]
    folded_b = beta.astype(np.float64) - mean.astype(np.float64) * scale
    return folded_w.astype(np.float32), folded_b.astype(np.float32)


class _GraphBuilder(GraphBuilder):
    """MobileNetV2's layers as ONNX nodes, from the checkpoint's state dict."""

    def __init__(self, state: StateDict) -> None:
        super().__init__()
        self.state = state

    def conv_bn(
        self,
        x: str,
        conv: str,
        bn: str,
        stride: int = 1,
        depthwise: bool = False,
        relu6: bool = True,
    ) -> str:
        """Conv (BN folded in), optionally followed by ReLU6 as ``Clip(0, 6)``."""
        w, b = fold_batchnorm(self.state[f"{conv}.weight"], self.state, bn)
        out_ch, in_per_group, k, _ = w.shape
        if depthwise and in_per_group != 1:
            raise ValueError(f"{conv} is not depthwise: weight {w.shape}")
        y = self.node(
            "Conv",
            [x, self.constant(f"{conv}.w", w), self.constant(f"{conv}.b", b)],
            conv,
            group=out_ch if depthwise else 1,
            kernel_shape=[k, k],
            pads=[(k - 1) // 2] * 4,
            strides=[stride, stride],
        )
        if not relu6:
            return y
        return self.node("Clip", [y, "relu6_min", "relu6_max"], f"{conv}.relu6")


def _inverted_residual(
    g: _GraphBuilder, x: str, index: int, in_ch: int, out_ch: int, stride: int, t: int
) -> str:
    """Emit torchvision's ``InvertedResidual`` block ``features.<index>``."""
    prefix = f"features.{index}.conv"
    y, layer = x, 0
    if t != 1:
        y = g.conv_bn(y, f"{prefix}.0.0", f"{prefix}.0.1")
        layer = 1
    y = g.conv_bn(y, f"{prefix}.{layer}.0", f"{prefix}.{layer}.1", stride, depthwise=True)
    y = g.conv_bn(y, f"{prefix}.{layer + 1}", f"{prefix}.{layer + 2}", relu6=False)
    if stride == 1 and in_ch == out_ch:
        y = g.node("Add", [x, y], f"features.{index}.add")
    return y


def _check_shapes(state: StateDict) -> None:
    """Fail early if the checkpoint does not match MobileNetV2 (width 1.0)."""
    expected = {
        "features.0.0.weight": (32, 3, 3, 3),
        "features.18.0.weight": (EMBEDDING_DIM, 320, 1, 1),
        "classifier.1.weight": (NUM_CLASSES, EMBEDDING_DIM),
        "classifier.1.bias": (NUM_CLASSES,),
    }
    for key, shape in expected.items():
        if key not in state or state[key].shape != shape:
            got = state[key].shape if key in state else "missing"
            raise ValueError(f"{key}: expected {shape}, got {got}")


def _backbone(g: _GraphBuilder) -> str:
    """Emit ``features`` 0..18 and return the final feature map name."""
    y = g.conv_bn("input", "features.0.0", "features.0.1", stride=2)
    in_ch, index = 32, 1
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        for i in range(n):
            y = _inverted_residual(g, y, index, in_ch, c, s if i == 0 else 1, t)
            in_ch, index = c, index + 1
    return g.conv_bn(y, "features.18.0", "features.18.1")


def _head(g: _GraphBuilder, features: str) -> tuple[str, str]:
    """Emit pooling, classifier and normalised embedding; return both names."""
    pooled = g.node("GlobalAveragePool", [features], "pool")
    flat = g.node("Flatten", [pooled], "flatten", axis=1)
    w = g.constant("classifier.1.w", g.state["classifier.1.weight"])
    b = g.constant("classifier.1.b", g.state["classifier.1.bias"])
    g.nodes.append(helper.make_node("Gemm", [flat, w, b], ["logits"], transB=1))
    norm = g.node("ReduceL2", [flat], "l2norm", axes=[1], keepdims=1)
    safe = g.node("Max", [norm, "norm_eps"], "l2norm_safe")
    g.nodes.append(helper.make_node("Div", [flat, safe], ["embedding"]))
    return "logits", "embedding"


def _scalar(value: float) -> Array:
    """Return ``value`` as a float32 scalar array."""
    return np.array(value, dtype=np.float32)


def build_model(state: StateDict, metadata: Mapping[str, str] | None = None) -> onnx.ModelProto:
    """Build and check the two-output MobileNetV2 ONNX model from a state dict."""
    _check_shapes(state)
    g = _GraphBuilder(state)
    g.constant("relu6_min", _scalar(0.0))
    g.constant("relu6_max", _scalar(6.0))
    g.constant("norm_eps", _scalar(NORM_EPS))
    logits, embedding = _head(g, _backbone(g))
    return g.model(
        "mobilenet_v2",
        {"input": ["batch", 3, 224, 224]},
        {logits: ["batch", NUM_CLASSES], embedding: ["batch", EMBEDDING_DIM]},
        "darkroom-mobilenet-convert",
        metadata,
    )


def convert(source: Path, target: Path) -> None:
    """Read the checkpoint at ``source`` and write the ONNX model to ``target``."""
    onnx.save_model(build_model(load_state_dict(source)), str(target))
