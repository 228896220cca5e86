"""Every backend computes the reference cell; the registry lists one set of names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnbench import backends
from rnnbench.cells import Weights, make_cell


def _case(cell, batch, seq_len=50, hidden=24, inputs=5):
    module = make_cell(cell, inputs, hidden, seed=11)
    x = np.random.default_rng(batch).standard_normal((seq_len, batch, inputs)).astype(np.float32)
    with torch.no_grad():
        reference, _ = module(torch.from_numpy(x))
    return Weights.from_module(module), x, reference.numpy()


@pytest.mark.parametrize("cell", ["gru", "lstm", "reluadd"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("backend", ["float", "torch"])
def test_backend_matches_reference(backend, cell, batch):
    weights, x, reference = _case(cell, batch)
    out = backends.get(backend).prepare(weights, {}, x).run(x)
    assert out.shape == reference.shape
    assert np.abs(out - reference).max() <= 1e-4


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_onnxruntime_matches_reference(cell):
    weights, x, reference = _case(cell, 2)
    out = backends.get("onnxruntime").prepare(weights, {}, x).run(x)
    assert np.abs(out - reference).max() <= 1e-4


def test_onnxruntime_skips_reluadd_with_a_reason():
    reason = backends.get("onnxruntime").skip_reason("reluadd", {})
    assert reason and "reluadd" in reason


def test_float_kernel_is_one_compiled_call():
    from rnnbench.backends import float32

    assert hasattr(float32.run_sequences, "signatures")  # a numba dispatcher, not Python


def test_unknown_backend_lists_valid_names():
    with pytest.raises(KeyError, match="valid backends: float, torch, onnxruntime"):
        backends.get("tpu")


def test_backends_refuse_unknown_params():
    with pytest.raises(backends.InvalidParams, match="takes no parameters"):
        backends.get("float").param_variants({"bits": [8]})
