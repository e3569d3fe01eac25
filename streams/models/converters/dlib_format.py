"""Reader for dlib's DNN serialization, as used by ``dlib_face_recognition_resnet_model_v1.dat``.

dlib writes a network by recursion over its C++ type (dlib/dnn/core.h): every ``add_layer``
writes its version, then its whole sub-network, then its own layer ("details"), then its state
(three bools, the cached tensors). So the file opens with the loss layer and a run of version
numbers going down to the input layer, and the layer bodies then follow from the input upwards;
reading it is one pass down the headers and one pass up the bodies, and gives the layers in
input-to-output order for free. ``tag``/``skip`` layers write only a version (1, the same for
both) and no body, so which one a position holds can only come from the network's definition:
they come back as ``TagOrSkip`` for the caller to resolve.

Primitive encodings (dlib/serialize.h, dlib/float_details.h, dlib/cuda/tensor.h): an integer is
a control byte (low nibble: byte count, 0x80: negative) then that many little-endian bytes; a
bool is the ASCII byte '0' or '1'; a string is its unsigned length then its bytes; a scalar float
is an int64 mantissa and an int16 exponent (value = mantissa * 2**exponent, exponents 32000..32002
mean +inf, -inf, nan); a tensor is version 2, four int64 dimensions and raw little-endian float32,
not the scalar float encoding. Any other byte is an error naming its offset.

The face descriptor file (22,466,066 bytes, written by a 2017 dlib: con_4, affine_, relu_, fc_2
bodies, add_layer version 2 and 3 wrappers) reads in 0.02-0.08 s as 132 records: the input, 29
con, 29 affine, 29 relu, 6 pools, 14 add_prev, 22 tag/skip, the fc and the loss, with 5,614,592
parameter values, and ends exactly at its last byte.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]

TENSOR_VERSION: Final = 2
ALIAS_TENSOR_VERSION: Final = 1
# float_details' exponents for the values a mantissa cannot carry
_FLOAT_SPECIAL: Final = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
_CONV_MODE: Final = 0  # dlib::layer_mode
_FC_HAS_BIAS: Final = 0  # dlib::fc_bias_mode


@dataclass(frozen=True)
class InputRGB:
    """``input_rgb_image_sized<nr, nc>``: the (pixel - mean) / 256 normalisation lives here."""

    offset: int
    mean_rgb: tuple[float, float, float]
    nr: int
    nc: int


@dataclass(frozen=True)
class Con:
    """``con_``: ``weight`` is [filters, channels, rows, cols], as ONNX Conv wants it."""

    offset: int
    weight: Array
    bias: Array | None
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class Affine:
    """``affine_`` (a frozen batch norm): y = x * gamma + beta, per channel in conv mode."""

    offset: int
    gamma: Array
    beta: Array
    conv_mode: bool


@dataclass(frozen=True)
class Relu:
    offset: int


@dataclass(frozen=True)
class Pool:
    """``max_pool_`` / ``avg_pool_``; a window of 0 means the whole input (``*_everything``)."""

    offset: int
    kind: str  # "max" or "avg"
    window: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class AddPrev:
    """``add_prev_``: the tag it adds is a template argument, so the file does not say which."""

    offset: int


@dataclass(frozen=True)
class TagOrSkip:
    """A ``tagN`` or ``skipN`` layer: both serialize as version 1 with no body."""

    offset: int


@dataclass(frozen=True)
class Fc:
    """``fc_``: ``weight`` is [inputs, outputs] (dlib computes x @ W)."""

    offset: int
    weight: Array
    bias: Array | None


@dataclass(frozen=True)
class LossMetric:
    offset: int
    margin: float
    distance_threshold: float


Layer = InputRGB | Con | Affine | Relu | Pool | AddPrev | TagOrSkip | Fc | LossMetric


def parameter_count(layers: list[Layer]) -> int:
    """Every stored parameter value, affine gamma/beta included.

    dlib's own ``count_parameters`` skips affine layers (their ``get_layer_params`` is empty):
    for the face file it says 5,607,488, this 5,614,592.
    """
    total = 0
    for layer in layers:
        if isinstance(layer, Con | Fc):
            total += layer.weight.size + (0 if layer.bias is None else layer.bias.size)
        elif isinstance(layer, Affine):
            total += layer.gamma.size + layer.beta.size
    return total


class _Stream:
    """A cursor over the file's bytes; every failure names the offset where it happened."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def fail(self, message: str, at: int | None = None) -> ValueError:
        return ValueError(f"dlib file, byte {self.pos if at is None else at}: {message}")

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail(f"truncated: {what} needs {n} bytes, {len(self.data) - self.pos} left")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def integer(self, what: str, signed: bool = True) -> int:
        start = self.pos
        control = self.take(1, what)[0]
        size = control & 0x0F
        # 0x70 is never written; a set bit there is also how dlib spots its old text format.
        if control & 0x70 or not 1 <= size <= 8:
            raise self.fail(f"bad integer control byte 0x{control:02x} for {what}", start)
        if control & 0x80 and not signed:
            raise self.fail(f"negative value for unsigned {what}", start)
        value = int.from_bytes(self.take(size, what), "little")
        return -value if control & 0x80 else value

    def expect_int(self, what: str, allowed: tuple[int, ...]) -> int:
        start = self.pos
        value = self.integer(what)
        if value not in allowed:
            raise self.fail(f"{what} is {value}, expected one of {allowed}", start)
        return value

    def boolean(self, what: str) -> bool:
        start = self.pos
        byte = self.take(1, what)
        if byte not in (b"0", b"1"):
            raise self.fail(f"{what}: expected ASCII '0' or '1', got {byte!r}", start)
        return byte == b"1"

    def real(self, what: str) -> float:
        start = self.pos
        mantissa = self.integer(f"{what} (mantissa)")
        exponent = self.integer(f"{what} (exponent)")
        if exponent in _FLOAT_SPECIAL:
            return _FLOAT_SPECIAL[exponent]
        if not -(2**15) <= exponent < 32000 or abs(mantissa) >= 2**63:
            raise self.fail(f"{what}: mantissa {mantissa}, exponent {exponent} out of range", start)
        return math.ldexp(float(mantissa), exponent)

    def string(self, what: str) -> str:
        start = self.pos
        size = self.integer(f"{what} (length)", signed=False)
        raw = self.take(size, what)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not ASCII: {raw[:32]!r}", start) from None

    def peek_string(self) -> str | None:
        """The string starting here, or None if these bytes do not read as one."""
        start = self.pos
        try:
            return self.string("peek")
        except ValueError:
            return None
        finally:
            self.pos = start

    def dims(self, what: str) -> tuple[int, int, int, int]:
        n, k, nr, nc = (self.integer(f"{what} dimension") for _ in range(4))
        if min(n, k, nr, nc) < 0:
            raise self.fail(f"{what} has a negative dimension {(n, k, nr, nc)}")
        return n, k, nr, nc

    def tensor(self, what: str) -> Array:
        self.expect_int(f"{what} tensor version", (TENSOR_VERSION,))
        shape = self.dims(what)
        count = math.prod(shape)
        raw = self.take(4 * count, f"{what} data ({count} float32)")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self, what: str) -> tuple[int, int, int, int]:
        self.expect_int(f"{what} alias_tensor version", (ALIAS_TENSOR_VERSION,))
        return self.dims(what)


def _split(s: _Stream, params: Array, shapes: list[tuple[int, ...]], what: str) -> list[Array]:
    """Cut dlib's one flat parameter tensor into the views its alias_tensors describe."""
    flat = params.reshape(-1)
    sizes = [math.prod(shape) for shape in shapes]
    if sum(sizes) != flat.size:
        raise s.fail(f"{what}: parameters hold {flat.size} values, its views {sum(sizes)}")
    out, start = [], 0
    for shape, size in zip(shapes, sizes, strict=True):
        out.append(flat[start : start + size].reshape(shape))
        start += size
    return out


def _multipliers(s: _Stream, what: str) -> None:
    # Learning-rate and weight-decay multipliers: training state, read and dropped.
    for name in ("lr", "wd", "bias lr", "bias wd"):
        s.real(f"{what} {name} multiplier")


def _con(s: _Stream, offset: int, version: str) -> Con:
    params = s.tensor("con params")
    filters = s.integer("con num_filters")
    nr, nc = s.integer("con nr"), s.integer("con nc")
    stride = (s.integer("con stride_y"), s.integer("con stride_x"))
    padding = (s.integer("con padding_y"), s.integer("con padding_x"))
    weight_shape = s.alias("con filters")
    bias_shape = s.alias("con biases")
    _multipliers(s, "con")
    use_bias = s.boolean("con use_bias") if version in ("con_5", "con_6") else True
    if version == "con_6" and s.boolean("con use_relu"):
        raise s.fail("con_ with a fused relu is not supported", offset)
    if weight_shape[0] != filters or weight_shape[2:] != (nr, nc):
        raise s.fail(f"con filters {weight_shape} disagree with {filters}x{nr}x{nc}", offset)
    weight, bias = _split(s, params, [weight_shape, bias_shape], "con")
    if not use_bias and bias.size:
        raise s.fail(f"con without bias has a bias view {bias_shape}", offset)
    if use_bias and bias.size != filters:
        raise s.fail(f"con bias view {bias_shape} does not match {filters} filters", offset)
    return Con(offset, weight, bias.reshape(-1) if use_bias else None, stride, padding)


def _affine(s: _Stream, offset: int, version: str) -> Affine:
    params = s.tensor("affine params")
    gamma_shape, beta_shape = s.alias("affine gamma"), s.alias("affine beta")
    mode = s.expect_int("affine mode", (0, 1))
    if version == "affine_2" and s.boolean("affine disabled"):
        raise s.fail("disabled affine_ layer is not supported", offset)
    gamma, beta = _split(s, params, [gamma_shape, beta_shape], "affine")
    return Affine(offset, gamma, beta, mode == _CONV_MODE)


def _pool(s: _Stream, offset: int, kind: str) -> Pool:
    window = (s.integer(f"{kind}_pool nr"), s.integer(f"{kind}_pool nc"))
    stride = (s.integer(f"{kind}_pool stride_y"), s.integer(f"{kind}_pool stride_x"))
    padding = (s.integer(f"{kind}_pool padding_y"), s.integer(f"{kind}_pool padding_x"))
    return Pool(offset, kind, window, stride, padding)


def _fc(s: _Stream, offset: int, version: str) -> Fc:
    outputs = s.integer("fc num_outputs", signed=False)
    inputs = s.integer("fc num_inputs", signed=False)
    params = s.tensor("fc params")
    weight_shape, bias_shape = s.alias("fc weights"), s.alias("fc biases")
    has_bias = s.expect_int("fc bias mode", (0, 1)) == _FC_HAS_BIAS
    _multipliers(s, "fc")
    if version == "fc_3":
        has_bias = s.boolean("fc use_bias") and has_bias
    if weight_shape[:2] != (inputs, outputs):
        raise s.fail(f"fc weights {weight_shape} disagree with {inputs}x{outputs}", offset)
    # dlib keeps the bias view even when it is unused; only then may it be empty
    weight, bias = _split(s, params, [(inputs, outputs), bias_shape], "fc")
    if has_bias and bias.size != outputs:
        raise s.fail(f"fc bias view {bias_shape} does not match {outputs} outputs", offset)
    return Fc(offset, weight, bias.reshape(-1) if has_bias else None)


def _details(s: _Stream) -> Layer:
    """One layer body, recognised by the version string it starts with."""
    offset = s.pos
    version = s.string("layer version")
    if version in ("con_4", "con_5", "con_6"):
        return _con(s, offset, version)
    if version in ("affine_", "affine_2"):
        return _affine(s, offset, version)
    if version in ("relu_", "relu_2"):
        if version == "relu_2" and s.boolean("relu disabled"):
            raise s.fail("disabled relu_ layer is not supported", offset)
        return Relu(offset)
    if version in ("max_pool_2", "avg_pool_2"):
        return _pool(s, offset, version[:3])
    if version == "add_prev_":
        return AddPrev(offset)
    if version in ("fc_2", "fc_3"):
        return _fc(s, offset, version)
    raise s.fail(f"unsupported layer {version!r}", offset)


def _input(s: _Stream) -> InputRGB:
    offset = s.pos
    version = s.string("input layer version")
    if version != "input_rgb_image_sized":
        raise s.fail(f"unsupported input layer {version!r}", offset)
    mean = (s.real("avg_red"), s.real("avg_green"), s.real("avg_blue"))
    nr, nc = s.integer("input nr", signed=False), s.integer("input nc", signed=False)
    return InputRGB(offset, mean, nr, nc)


def _loss(s: _Stream) -> LossMetric:
    s.expect_int("add_loss_layer version", (1,))
    offset = s.pos
    version = s.string("loss version")
    if version == "loss_metric_":  # before margins were stored, they were hard-coded
        return LossMetric(offset, 0.1, 0.75)
    if version != "loss_metric_2":
        raise s.fail(f"unsupported loss layer {version!r}", offset)
    return LossMetric(offset, s.real("margin"), s.real("dist_thresh"))


def _layer_state(s: _Stream, version: int, on_input: bool) -> None:
    """What add_layer writes after its body; all of it is training state, and usually empty."""
    for name in ("this_layer_setup_called", "gradient_input_is_stale", "output_disabled"):
        s.boolean(name)
    tensors = ["x_grad", "cached_output"]
    if on_input or version == 2:
        tensors.append("grad_final" if on_input else "params_grad")
    for name in tensors:
        s.tensor(name)
    if on_input and version == 3:
        s.integer("sample_expansion_factor", signed=False)


def parse(data: bytes) -> list[Layer]:
    """All layers of a serialized ``loss_metric`` network, input first and the loss last."""
    s = _Stream(data)
    loss = _loss(s)
    # Going down: (offset, version) of each wrapper; version 1 is a tag or skip layer.
    headers: list[tuple[int, int]] = []
    while True:
        name = s.peek_string()
        if name is not None and name.startswith("input"):
            break
        start = s.pos
        version = s.expect_int("layer wrapper version", (1, 2, 3))
        headers.append((start, version))
        if version == 3:  # only add_layer directly over the input layer writes version 3
            break
    if not headers or headers[-1][1] == 1:
        raise s.fail("a tag layer directly on the input layer is not supported")
    layers: list[Layer] = [_input(s)]
    for depth, (start, version) in enumerate(reversed(headers)):
        if version == 1:
            layers.append(TagOrSkip(start))
            continue
        layers.append(_details(s))
        _layer_state(s, version, on_input=depth == 0)
    if s.pos != len(data):
        raise s.fail(f"{len(data) - s.pos} trailing bytes after the network")
    layers.append(loss)
    return layers


def read(path: Path) -> list[Layer]:
    """``parse`` the file at ``path``."""
    return parse(path.read_bytes())


def describe(layer: Layer) -> str:
    """A short line naming ``layer``, its offset and shape, for error messages."""
    if isinstance(layer, Con):
        detail = f"{layer.weight.shape}, stride {layer.stride}, padding {layer.padding}"
    elif isinstance(layer, Pool):
        detail = f"{layer.kind}, window {layer.window}, stride {layer.stride}"
    elif isinstance(layer, Fc):
        detail = f"{layer.weight.shape}, bias {layer.bias is not None}"
    else:
        detail = ""
    return f"{type(layer).__name__}({detail}) at byte {layer.offset}"
