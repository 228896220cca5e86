"""Integer backends: bit-exact kernels, error against float, saturation, bad widths, torch-int8."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rnnbench import backends
from rnnbench.backends.integer.backend import INT8, INT16, IntegerBackend, IntegerPrepared
from rnnbench.backends.integer.fixed import SIGMOID_TABLE, TANH_TABLE, lut_lookup, shift_round
from rnnbench.backends.integer.quantize import quantize
from rnnbench.backends.integer.reference import run_reference
from rnnbench.cells import Weights, make_cell, names
from rnnbench.cells.costs import integer_step_cost
from rnnbench.cli import app
from rnnbench.results import store
from rnnbench.results.stats import error_metrics

INPUTS = 5


def _weights(cell: str, hidden: int, seed: int = 0) -> Weights:
    return Weights.from_module(make_cell(cell, INPUTS, hidden, seed=seed))


def _inputs(seq_len: int, batch: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((seq_len, batch, INPUTS)).astype(np.float32)


def _float_reference(weights: Weights, x: np.ndarray) -> np.ndarray:
    module = make_cell(weights.cell, weights.input_size, weights.hidden_size)
    module.load_state_dict({k: torch.from_numpy(getattr(weights, k)) for k in
                            ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
    with torch.inference_mode():
        return module(torch.from_numpy(x))[0].numpy()


def test_shift_round_rounds_half_up_and_shifts_left_for_negative_amounts():
    v = np.array([-6, -5, -3, -2, 2, 3, 5, 6])
    assert shift_round(v, 2).tolist() == [-1, -1, -1, 0, 1, 1, 1, 2]  # -1.5 -> -1, 1.5 -> 2
    assert shift_round(v, 0).tolist() == v.tolist()
    assert shift_round(v, -3).tolist() == (v * 8).tolist()


def test_activation_tables_match_sigmoid_and_tanh():
    x = np.linspace(-20, 20, 20001)
    q = np.rint(x * 2**11).astype(np.int64)  # Q4.11 inputs, saturated by the lookup beyond +-16
    exact_x = np.clip(q, -32768, 32767) / 2**11
    sig = lut_lookup(SIGMOID_TABLE, q) / 2**15
    tanh = lut_lookup(TANH_TABLE, q) / 2**15
    assert np.abs(sig - 1 / (1 + np.exp(-exact_x))).max() < 5e-5
    assert np.abs(tanh - np.tanh(exact_x)).max() < 5e-5


@pytest.mark.parametrize("threads", [1, 3])  # 3: the batch split across threads (slices of 1 and 2)
@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("cell", names())
def test_kernels_are_bit_exact_against_the_numpy_reference(cell, bits, threads):
    weights = _weights(cell, hidden=37, seed=1)
    calibration = _inputs(12, 3, seed=2)
    q = quantize(weights, bits, calibration)
    prepared = IntegerPrepared(q, threads)
    # Inputs 3x wider than calibrated on: exercises every saturation path as well.
    for x in (_inputs(12, 3, seed=3), 3 * _inputs(9, 2, seed=4)):
        expected, saturated = run_reference(q, x)
        np.testing.assert_array_equal(prepared.run_integers(x), expected)
        assert prepared.saturated == saturated
    assert prepared.saturated > 0


@pytest.mark.parametrize(("cell", "bits", "max_abs"), [
    ("gru", 16, 1e-3), ("lstm", 16, 1e-3), ("reluadd", 16, 1e-3),
    ("gru", 8, 0.05), ("lstm", 8, 0.05), ("reluadd", 8, 0.3),
])
def test_error_against_float_is_within_documented_bounds(cell, bits, max_abs):
    weights = _weights(cell, hidden=16)
    x = _inputs(10, 4, seed=5)
    backend = backends.get(f"int{bits}")
    out = backend.prepare(weights, {}, _inputs(10, 4, seed=6)).run(x)
    errors = error_metrics(out, _float_reference(weights, x))
    assert errors["max_abs_err"] < max_abs
    assert errors["rel_l2_err"] < max_abs


def test_int16_is_more_accurate_than_int8():
    weights = _weights("gru", hidden=16)
    x = _inputs(10, 2, seed=7)
    reference = _float_reference(weights, x)
    err = {b.bits: error_metrics(b.prepare(weights, {}, x).run(x), reference)["rel_l2_err"]
           for b in (INT8, INT16)}
    assert err[16] < err[8] / 10


def test_saturation_is_reported_when_the_calibration_range_is_too_narrow():
    weights = _weights("reluadd", hidden=16)
    x = _inputs(10, 2, seed=8)
    narrow = INT8.prepare(weights, {}, 0.05 * x)
    narrow.run(x)
    facts = narrow.facts()
    assert facts["saturation_rate"] > 0.01
    assert "saturated" in facts["error_message"]
    matched = INT8.prepare(weights, {}, x)
    matched.run(x)
    assert matched.facts()["saturation_rate"] == 0.0
    assert "error_message" not in matched.facts()
    assert matched.facts()["calibration_size"] == 10 * 2


def test_integer_cost_model_counts_widths_and_lookups():
    hidden, inputs = 8, 4
    macs = 3 * hidden * (inputs + hidden)
    gru8, reluadd8 = (integer_step_cost(c, inputs, hidden, 8) for c in ("gru", "reluadd"))
    gru16 = integer_step_cost("gru", inputs, hidden, 16)
    assert gru8["ops_int8"] == macs and gru8["ops_int16"] < macs
    assert gru16["ops_int8"] == 0 and gru16["ops_int16"] == macs
    assert gru8["ops_lut"] == 3 * hidden
    assert integer_step_cost("lstm", inputs, hidden, 8)["ops_lut"] == 5 * hidden
    # reluadd: no tables and no products of two activations, only the rescaling of the two products.
    assert reluadd8["ops_lut"] == 0 and reluadd8["ops_int32"] == 2 * 2 * 3 * hidden < gru8["ops_int32"]
    assert gru16["ops_int32"] > gru8["ops_int32"]  # 32-bit elementwise arithmetic at 16 bits


def test_unsupported_bit_widths_are_refused():
    with pytest.raises(backends.InvalidParams, match="unsupported integer bit width 7; supported: 8, 16"):
        IntegerBackend(7)
    with pytest.raises(backends.InvalidParams, match="bit width 4"):
        quantize(_weights("gru", 4), 4, _inputs(3, 1, seed=0))


@pytest.mark.parametrize("args", [["--backends", "int7"], ["--backends", "int8", "-p", "int8.bits=7"]])
def test_cli_rejects_bad_integer_widths_in_one_line(args):
    result = CliRunner().invoke(app, ["sweep", "--dry-run", *args])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "int" in result.output


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_torch_int8_runs_gru_and_lstm_or_skips_cleanly(cell):
    backend = backends.get("torch-int8")
    weights = _weights(cell, hidden=16)
    reason = backend.skip_reason(cell, {})
    if reason is not None:  # a torch without torch.ao.quantization
        with pytest.raises(backends.Unsupported):
            backend.prepare(weights, {}, _inputs(4, 1, seed=0))
        return
    x = _inputs(10, 2, seed=9)
    out = backend.prepare(weights, {}, x).run(x)
    assert error_metrics(out, _float_reference(weights, x))["max_abs_err"] < 0.05


def test_torch_int8_skips_reluadd_with_a_reason():
    assert "reluadd" in backends.get("torch-int8").skip_reason("reluadd", {})


def test_sweep_writes_integer_rows_in_the_results_schema(tmp_path):
    out = tmp_path / "int.parquet"
    result = CliRunner().invoke(app, [
        "sweep", "--cells", "reluadd", "--backends", "int8,torch-int8", "--seq-lens", "4",
        "--hidden", "8", "--min-time", "0.01", "--repeats", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows, _ = store.read(out)
    ok = rows[(rows["backend"] == "int8") & (rows["status"] == "ok")]
    assert len(ok) > 0
    assert (ok["calibration_size"] == 4).all() and (ok["saturation_rate"] < 0.01).all()
    assert (ok["ops_int8"] > 0).all() and (ok["ops_lut"] == 0).all() and ok["max_abs_err"].notna().all()
    skipped = rows[(rows["backend"] == "torch-int8") & (rows["cell"] == "reluadd")]
    assert skipped["status"].tolist() == ["skipped"]


def test_vnni_dot_products_are_exact_over_the_whole_int8_range():
    """``vpdpbusd`` on ``u = h + 128``, less ``128 * rowsum(W)``, is the int64 product (padding too)."""
    from numba import njit

    from rnnbench.backends.integer import vnni

    if not vnni.HAS_VNNI:
        pytest.skip("this CPU has no AVX-512 VNNI")

    @njit
    def product(w_padded, offset, h, u, acc):
        for b in range(h.shape[0]):
            for k in range(h.shape[1]):
                u[b, k] = np.uint8(np.int32(h[b, k]) + 128)
        vnni.dot_rows_u8s8(w_padded, u, acc)
        return acc - offset

    rng = np.random.default_rng(0)
    for rows, k_len, batch in [(7, 5, 1), (111, 37, 3), (256, 130, 2)]:
        weight = rng.integers(-128, 128, (rows, k_len)).astype(np.int8)
        weight[0] = -128  # the extremes: |sum| up to K * 128 * 128
        h = rng.integers(-128, 128, (batch, k_len)).astype(np.int8)
        h[0, : k_len // 2] = -128
        w_padded, offset = vnni.pad_for_vnni(weight)
        u = np.zeros((batch, w_padded.shape[1]), np.uint8)
        got = product(w_padded, offset, h, u, np.zeros((batch, w_padded.shape[0]), np.int32))
        np.testing.assert_array_equal(got[:, :rows], h.astype(np.int64) @ weight.astype(np.int64).T)


def test_int8_recurrent_product_uses_vnni_where_the_cpu_has_it():
    from numba import njit

    from rnnbench.backends.integer import kernels, vnni

    if not vnni.HAS_VNNI:
        pytest.skip("this CPU has no AVX-512 VNNI")

    @njit  # not cached, so its machine code can be read back
    def product(w_hh, w_padded, offset, h, u, acc):
        kernels._recurrent_product(w_hh, w_padded, offset, h, u, acc)

    weight = np.ones((8, 64), np.int8)
    w_padded, offset = vnni.pad_for_vnni(weight)
    product(weight, w_padded, offset, np.ones((2, 64), np.int8), np.zeros((2, 64), np.uint8),
            np.zeros((2, 8), np.int32))
    assert "vpdpbusd" in product.inspect_asm(product.signatures[0])
