"""Execution providers: the configured order, skipped when unavailable, the fallback logged."""

from __future__ import annotations

import pytest

from streams.inference.sessions import (
    InferenceSetupError,
    ModelSession,
    SessionConfig,
    candidate_providers,
    nvidia_driver_present,
)
from streams.models.repository import ModelRepository


@pytest.fixture(scope="module")
def model_path(repository: ModelRepository):
    return repository.require_built(repository.get("blazeface")).model


@pytest.mark.skipif(nvidia_driver_present(), reason="this machine has a GPU")
def test_gpu_providers_fall_back_to_cpu_without_a_driver(model_path) -> None:
    config = SessionConfig(providers=("tensorrt", "cuda", "cpu"))
    assert candidate_providers(config) == ["cpu"]
    session = ModelSession(model_path, config, "blazeface")
    assert session.provider == "cpu" and not session.on_gpu


@pytest.mark.skipif(nvidia_driver_present(), reason="this machine has a GPU")
def test_no_usable_provider_is_a_clear_error(model_path) -> None:
    with pytest.raises(InferenceSetupError, match="none is available on this machine"):
        ModelSession(model_path, SessionConfig(providers=("cuda",)), "blazeface")


def test_cpu_session_runs_and_names_its_io(model_path) -> None:
    import numpy as np

    session = ModelSession(model_path, SessionConfig(providers=("cpu",), intra_op_threads=1), "b")
    assert session.input_names == ["input"]
    regressors, scores = session.run({"input": np.zeros((2, 3, 192, 192), np.float32)})
    assert regressors.shape == (2, 2304, 16) and scores.shape == (2, 2304, 1)


@pytest.mark.parametrize("spin", [False, True])
def test_threads_spin_only_when_asked(model_path, spin: bool) -> None:
    # Spinning pools of idle sessions took the cores from the running one (benchmarks/threads.py)
    session = ModelSession(model_path, SessionConfig(providers=("cpu",), spin_threads=spin), "b")
    options = session.session.get_session_options()
    expected = "1" if spin else "0"
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == expected
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == expected
