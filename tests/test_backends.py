"""Every backend computes the reference cell; the registry lists one set of names."""

from __future__ import annotations

import sys

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


@pytest.mark.parametrize("cell", ["gru", "lstm", "reluadd"])
def test_float_kernel_in_input_chunks_with_packed_products(cell):
    """B=40, T=50: MKL's packed products; the input projection runs in three chunks."""
    from rnnbench.backends import float32

    weights, x, reference = _case(cell, 40)
    rows = weights.weight_hh.shape[0]
    assert float32.INPUT_CHUNK_FLOATS // (40 * rows) < 50
    out = backends.get("float").prepare(weights, {}, x).run(x)
    assert np.abs(out - reference).max() <= 1e-4


@pytest.mark.parametrize("cell", ["gru", "lstm", "reluadd"])
@pytest.mark.parametrize(("threads", "batch", "hidden", "split"), [
    (2, 7, 24, "batch"), (3, 2, 24, "batch"), (3, 40, 24, "batch"), (2, 1, 24, "none"),
    (2, 7, 260, "units"), (3, 2, 260, "units"), (2, 1, 260, "none"),
])
def test_float_threads_split_the_work_and_match_one_thread(cell, threads, batch, hidden, split):
    """--threads N splits the batch (odd B, B < N) or, at large H, the hidden units (H not a
    multiple of 16 per thread); one sequence is not split. The outputs are one thread's."""
    from rnnbench.backends import float32

    weights, x, reference = _case(cell, batch, seq_len=20, hidden=hidden)
    one = backends.get("float").prepare(weights, {}, x).run(x)
    prepared = backends.get("float").prepare(weights, {}, x, threads=threads)
    assert prepared.split(batch) == split
    out = prepared.run(x)
    assert out.shape == one.shape
    assert np.abs(out - one).max() <= 1e-5  # MKL may block a smaller product differently
    assert np.abs(out - reference).max() <= 1e-4
    slices = float32.batch_slices(batch, threads)
    assert len(slices) == min(threads, batch)
    assert np.array_equal(np.concatenate([np.arange(batch)[s] for s in slices]), np.arange(batch))
    for units, parts in ((hidden, threads), (40, 3), (20, 2)):  # at least 16 units per part
        ranges = float32.unit_ranges(units, parts)
        assert len(ranges) == min(parts, max(1, units // 16))
        assert [u for first, last in ranges for u in range(first, last)] == list(range(units))
        assert all(first % 16 == 0 for first, _ in ranges)


def test_mkl_threads_set_for_one_calling_thread_only():
    """Each slice's thread runs MKL on one core, leaving other threads' count alone. (The lowercase
    ``mkl_set_num_threads_local`` is MKL's Fortran entry point: called with an int it crashed.)"""
    import threading

    from rnnbench.backends import mkl

    max_threads = mkl._LIB.MKL_Get_Max_Threads
    torch.set_num_threads(2)
    seen = []

    def in_thread():
        with mkl.one_thread_here():
            seen.append(max_threads())
        seen.append(max_threads())

    worker = threading.Thread(target=in_thread)
    worker.start()
    worker.join()
    assert seen == [1, 2]
    assert max_threads() == 2


def _python_calls(run, x) -> int:
    calls = [0]

    def count(frame, event, arg):
        if event == "call":
            calls[0] += 1

    sys.setprofile(count)
    try:
        run(x)
    finally:
        sys.setprofile(None)
    return calls[0]


@pytest.mark.parametrize("cell", ["gru", "lstm", "reluadd"])
def test_float_kernel_runs_a_sequence_without_python_per_step(cell):
    """The float backend's time loop is compiled: ten times the steps, not one more Python call."""
    module = make_cell(cell, 4, 8, seed=0)
    rng = np.random.default_rng(0)
    short = rng.standard_normal((5, 2, 4)).astype(np.float32)
    long = rng.standard_normal((50, 2, 4)).astype(np.float32)
    prepared = backends.get("float").prepare(Weights.from_module(module), {}, short)
    prepared.run(short), prepared.run(long)  # compile both shapes first
    assert _python_calls(prepared.run, long) == _python_calls(prepared.run, short)


def test_unknown_backend_lists_valid_names():
    with pytest.raises(KeyError, match="valid backends: float, torch, onnxruntime"):
        backends.get("tpu")


def test_backends_refuse_unknown_params():
    with pytest.raises(backends.InvalidParams, match="takes no parameters"):
        backends.get("float").param_variants({"bits": [8]})
