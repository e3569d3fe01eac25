"""One onnxruntime session per model, on the best execution provider that really works.

Providers are tried in the configured order (TensorRT, CUDA, CPU by default). onnxruntime-gpu
lists CUDA and TensorRT as *available* even on a machine without a GPU and then silently falls
back to CPU, so this module checks for the NVIDIA driver first and, after creating a session,
reads back which provider it actually got, and logs it.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy.typing as npt
import onnxruntime as ort

from streams.config import ProviderName
from streams.errors import SetupError
from streams.logs import get_logger

log = get_logger("darkroom.inference")

ORT_PROVIDERS: dict[ProviderName, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
_GPU_PROVIDERS = {"tensorrt", "cuda"}
Array = npt.NDArray[Any]


class InferenceSetupError(SetupError):
    """No configured execution provider could open the model."""


@dataclass(frozen=True)
class SessionConfig:
    """How sessions are opened (from EngineSettings)."""

    providers: tuple[ProviderName, ...] = ("tensorrt", "cuda", "cpu")
    intra_op_threads: int = 0  # 0 = onnxruntime's default (one per core)
    inter_op_threads: int = 1
    spin_threads: bool = False
    tensorrt_cache: Path | None = None


@cache
def nvidia_driver_present() -> bool:
    """Whether libcuda (the NVIDIA driver) can be loaded at all."""
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def candidate_providers(config: SessionConfig) -> list[ProviderName]:
    """The configured providers this machine can plausibly run, in order."""
    available = set(ort.get_available_providers())
    usable: list[ProviderName] = []
    for name in config.providers:
        if ORT_PROVIDERS[name] not in available:
            continue
        if name in _GPU_PROVIDERS and not nvidia_driver_present():
            continue
        usable.append(name)
    return usable


class ModelSession:
    """An onnxruntime session and the provider it runs on."""

    def __init__(self, path: Path, config: SessionConfig, label: str) -> None:
        self.label = label
        self.session, self.provider = _open(path, config, label)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    @property
    def on_gpu(self) -> bool:
        """True on CUDA or TensorRT."""
        return self.provider in _GPU_PROVIDERS

    def run(self, feeds: Mapping[str, Array], outputs: Sequence[str] | None = None) -> list[Array]:
        """Run once; on a GPU, inputs go through IO binding (one copy to the device)."""
        names = list(outputs or self.output_names)
        if not self.on_gpu:
            result: list[Array] = self.session.run(names, dict(feeds))
            return result
        binding = self.session.io_binding()
        for name, array in feeds.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, "cuda", 0))
        for name in names:
            binding.bind_output(name, "cpu")
        self.session.run_with_iobinding(binding)
        copied: list[Array] = binding.copy_outputs_to_cpu()
        return copied

    def warm_up(self, feeds: Mapping[str, Array]) -> float:
        """Run once so the first real batch does not pay for allocation; returns seconds."""
        started = time.perf_counter()
        self.run(feeds)
        return time.perf_counter() - started


def _options(config: SessionConfig) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = config.intra_op_threads
    options.inter_op_num_threads = config.inter_op_threads
    # Each session has its own pool, whose threads spin after an op by default: with the engine's
    # sessions run one after another next to the decoding threads, the idle pools' spinning took
    # the cores the running session needed (spinning off: 1.25x photos/s, benchmarks/threads.py).
    spin = "1" if config.spin_threads else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.add_session_config_entry("session.inter_op.allow_spinning", spin)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: fallbacks are logged by us, readably
    return options


def _provider_entry(name: ProviderName, config: SessionConfig) -> str | tuple[str, dict[str, Any]]:
    if name == "tensorrt" and config.tensorrt_cache is not None:
        config.tensorrt_cache.mkdir(parents=True, exist_ok=True)
        return ORT_PROVIDERS[name], {
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(config.tensorrt_cache),
            "trt_fp16_enable": True,
        }
    return ORT_PROVIDERS[name]


def _open(
    path: Path, config: SessionConfig, label: str
) -> tuple[ort.InferenceSession, ProviderName]:
    candidates = candidate_providers(config)
    skipped = [p for p in config.providers if p not in candidates]
    if skipped:
        log.debug(
            "providers skipped",
            model=label,
            skipped=skipped,
            why="not in this onnxruntime build or no NVIDIA driver",
        )
    errors: list[str] = []
    for index, wanted in enumerate(candidates):
        chain = [_provider_entry(p, config) for p in candidates[index:]]
        try:
            session = ort.InferenceSession(str(path), _options(config), providers=chain)
        except Exception as exc:  # a provider's libraries missing, a bad graph, ...
            errors.append(f"{wanted}: {exc}")
            continue
        actual = _short_name(session.get_providers()[0])
        if actual != wanted:
            log.warning("provider fell back", model=label, wanted=wanted, got=actual)
        log.debug("session ready", model=label, provider=actual)
        return session, actual
    raise InferenceSetupError(
        f"{label}: no execution provider of {list(config.providers)} could open {path}"
        + (f": {'; '.join(errors)}" if errors else " (none is available on this machine)")
    )


def _short_name(ort_name: str) -> ProviderName:
    for short, full in ORT_PROVIDERS.items():
        if full == ort_name:
            return short
    raise InferenceSetupError(f"unexpected provider {ort_name}")
