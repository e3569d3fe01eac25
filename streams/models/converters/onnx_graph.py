"""What every converter that assembles an ONNX graph with onnx.helper needs: unique names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET: Final = 17
IR_VERSION: Final = 8  # the IR version that introduced opset 17


class GraphBuilder:
    """Accumulates nodes and initializers; every value gets a unique name from its hint."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counter = 0

    def fresh(self, hint: str) -> str:
        """A new unique value name based on ``hint``."""
        self._counter += 1
        return f"{hint}_{self._counter}"

    def constant(self, name: str, value: np.ndarray[Any, Any]) -> str:
        """Register ``value`` as an initializer named ``name``; returns the name."""
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def unique_constant(self, hint: str, value: np.ndarray[Any, Any]) -> str:
        """Register ``value`` under a new unique name based on ``hint``."""
        return self.constant(self.fresh(hint), value)

    def node(self, op: str, inputs: list[str], hint: str, **attrs: int | list[int]) -> str:
        """Append a single-output node and return its output name."""
        out = self.fresh(hint)
        node = helper.make_node(op, inputs, [out], name=out)
        node.attribute.extend(helper.make_attribute(k, v) for k, v in attrs.items())
        self.nodes.append(node)
        return out

    def model(
        self,
        name: str,
        inputs: Mapping[str, list[str | int]],
        outputs: Mapping[str, list[str | int]],
        producer: str,
        metadata: Mapping[str, str] | None = None,
    ) -> onnx.ModelProto:
        """The checked float32 model of these nodes: ``inputs``/``outputs`` map names to shapes
        (a string is a dynamic axis)."""

        def values(shapes: Mapping[str, list[str | int]]) -> list[onnx.ValueInfoProto]:
            return [
                helper.make_tensor_value_info(n, TensorProto.FLOAT, d) for n, d in shapes.items()
            ]

        graph = helper.make_graph(
            self.nodes, name, values(inputs), values(outputs), initializer=self.initializers
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
            producer_name=producer,
        )
        helper.set_model_props(model, dict(metadata or {}))
        onnx.checker.check_model(model, full_check=True)
        return model
