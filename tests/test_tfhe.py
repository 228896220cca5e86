"""The TFHE backend: bit-exactness against the cleartext reference, environment, bad input.

The Concrete side runs in the TFHE environment (``make tfhe-env``; ``make test`` builds it);
the reference runs here, in the main environment.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import numpy as np
import pytest

from rnnbench import runner
from rnnbench.backends import InvalidParams, tfhe
from rnnbench.backends.tfhe import scheme
from rnnbench.cells import Weights, make_cell
from rnnbench.grid import Point

TFHE_PYTHON = tfhe.interpreter_path()
needs_env = pytest.mark.skipif(not TFHE_PYTHON.exists(), reason="no TFHE environment: run `make tfhe-env`")

_SIMULATE = """
import json, sys
import numpy as np
from rnnbench.backends.tfhe import EncryptedCell, scheme, validate
from rnnbench.cells import Weights, make_cell
cell, form, act_bits, mode, simulate = sys.argv[1:6]
m = make_cell(cell, 3, 3, seed=0)
rng = np.random.default_rng(0)
x = 2 * rng.standard_normal((2, 1, 3)).astype(np.float32)
prepared = EncryptedCell(Weights.from_module(m), validate(
    {"simulate": simulate, "act_bits": act_bits, "weight_bits": 4, "form": form, "mode": mode}), x,
    x.shape[1])
out = prepared.runner.run(scheme.quantize_inputs(x, prepared.qc))
print(json.dumps({"out": out.tolist(), "pbs": prepared.stats["programmable_bootstrap_count"]}))
"""


def _in_tfhe_env(script: str, *args: str, timeout: float = 600, marker: str = "") -> Any:
    """Run ``script`` in the TFHE environment; its result is the last stdout line starting with
    ``marker`` (Concrete writes its simulation warnings to stdout too), as JSON."""
    done = subprocess.run([str(TFHE_PYTHON), "-W", "ignore", "-c", script, *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(tfhe.REPO_ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads([line for line in done.stdout.splitlines() if line.startswith(marker)][-1])


def _simulated(cell: str, form: str, act_bits: int, mode: str = "composed", simulate: bool = True) -> dict:
    return _in_tfhe_env(_SIMULATE, cell, form, str(act_bits), mode, str(simulate), marker='{"out"')


def _reference(cell: str, form: str, act_bits: int) -> np.ndarray:
    m = make_cell(cell, 3, 3, seed=0)
    x = 2 * np.random.default_rng(0).standard_normal((2, 1, 3)).astype(np.float32)
    qc = scheme.quantize(Weights.from_module(m), x, 4, act_bits, form)
    return scheme.run_reference(qc, x)


@needs_env
@pytest.mark.parametrize("cell, form, act_bits", [
    ("gru", "literal", 3), ("lstm", "literal", 3), ("reluadd", "literal", 3),
    # a rounding that narrows its input's range (-514 to -512 at 11 bits: 10 bits) was taken
    # by Concrete for an overflow, doubling the lookup's result
    ("lstm", "literal", 4),
])
def test_simulated_circuit_equals_cleartext_reference(cell: str, form: str, act_bits: int) -> None:
    got = np.array(_simulated(cell, form, act_bits)["out"])
    assert np.count_nonzero(got)  # a state that moved
    np.testing.assert_array_equal(got, _reference(cell, form, act_bits))


_PRODUCT = """
import itertools, json
from concrete import fhe
from rnnbench.backends.tfhe import circuit, scheme
ops = scheme.TfheOps(engine=circuit.ConcreteEngine(), act_bits=3, form="literal")
pairs = list(itertools.product(range(0, 8), range(-4, 4)))
@fhe.compiler({"a": "encrypted", "b": "encrypted"})
def product(a, b):
    return ops.product(ops.made(a, 0, 0, 7), ops.made(b, 0, -4, 3)).q
compiled = product.compile(pairs, circuit.configuration({"global_p_error": 1e-5, "security": 128}, True))
print(json.dumps([[a, b, int(compiled.simulate(a, b))] for a, b in pairs]))
"""


@needs_env
def test_product_of_unsigned_and_signed_values_is_exact() -> None:
    """GRU's ``(1 - z) * n``: Concrete reads an unsigned operand as signed at the common width."""
    got = _in_tfhe_env(_PRODUCT)
    assert [(a, b, p) for a, b, p in got if a * b != p] == []


@needs_env
@pytest.mark.slow
def test_real_encrypted_run_equals_cleartext_reference() -> None:
    """Keys generated, inputs encrypted, two composed steps on ciphertexts, decrypted."""
    got = np.array(_simulated("lstm", "packed", 3, simulate=False)["out"])
    assert np.count_nonzero(got)
    np.testing.assert_array_equal(got, _reference("lstm", "packed", 3))


@needs_env
def test_composed_steps_equal_unrolled_steps() -> None:
    composed = _simulated("lstm", "literal", 3, "composed")
    unrolled = _simulated("lstm", "literal", 3, "unrolled")
    np.testing.assert_array_equal(np.array(composed["out"]), np.array(unrolled["out"]))


_PBS = """
import json
import numpy as np
from rnnbench.backends.tfhe import circuit, scheme, validate
from rnnbench.cells import Weights, make_cell
counts = {}
for cell in ("gru", "lstm", "reluadd"):
    for form in scheme.FORMS:
        m = make_cell(cell, 5, 2, seed=1)
        x = 2 * np.random.default_rng(1).standard_normal((2, 1, 5)).astype(np.float32)
        qc = scheme.quantize(Weights.from_module(m), x, 4, 3, form)
        compiled = circuit.compile_step(qc, 1, validate({"simulate": True}), True)
        counts[cell + "/" + form] = [compiled.step.statistics["programmable_bootstrap_count"],
                                     scheme.analyse(qc).pbs_count()]
print(json.dumps(counts))
"""


@needs_env
def test_pbs_counts_match_concretes_statistics() -> None:
    """The PBS the scheme predicts from its trace (roundings, fused and constant tables included)."""
    counts = _in_tfhe_env(_PBS, timeout=900)
    assert len(counts) == 6
    for name, (concrete, predicted) in counts.items():
        assert predicted == concrete, name


def test_packed_form_changes_reluadd_lookups_but_not_the_equations() -> None:
    m = make_cell("reluadd", 3, 2, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 1, 3)).astype(np.float32)
    literal = scheme.analyse(scheme.quantize(Weights.from_module(m), x, 4, 4, "literal"))
    packed = scheme.analyse(scheme.quantize(Weights.from_module(m), x, 4, 4, "packed"))
    assert packed.pbs_count() < literal.pbs_count()
    assert max(packed.lookup_histogram()) > max(literal.lookup_histogram())  # two-input lookups are wider


def test_least_error_scale_clips_rare_outliers_but_not_a_spread_range() -> None:
    rng = np.random.default_rng(0)
    worst_case = scheme.finest_frac(15.0, 15)  # no value saturates: 15 * 2**f <= 15
    spread = rng.uniform(-15, 15, 10_000)
    assert scheme.least_error_frac(spread, 15, worst_case, worst_case + 4) == worst_case
    tailed = np.concatenate([rng.normal(0, 1, 10_000), [15.0, -15.0]])
    assert scheme.least_error_frac(tailed, 15, worst_case, worst_case + 4) > worst_case


def test_narrowed_pre_activations_get_calibrated_scales() -> None:
    """GRU's ``W_in x + b_in + r * (W_hn h + b_hn)``: both pre-activations are narrowed (one for the
    product, one to meet it) at scales fitted to the data, never coarser than the worst case."""
    m = make_cell("gru", 3, 4, seed=1)
    x = np.random.default_rng(1).standard_normal((4, 256, 3)).astype(np.float32)
    qc = scheme.quantize(Weights.from_module(m), x, 4, 5, "literal")
    assert len(qc.site_fracs) == 2
    assert min(qc.site_fracs) >= qc.frac_pre
    uncalibrated = scheme.dataclasses.replace(qc, site_fracs=())
    assert scheme.make_ops(uncalibrated, scheme.NumpyEngine()).site_fracs == ()
    # The reference follows the calibrated scale: a different scale, different integers.
    if qc.site_fracs != (qc.frac_pre, qc.frac_pre):
        assert not np.array_equal(scheme.run_reference(qc, x), scheme.run_reference(uncalibrated, x))


def test_packed_inhibition_falls_back_to_relus_when_the_pair_is_too_wide() -> None:
    """At ``act_bits=6`` a packed ``(v, cut)`` pair needs 11 bits: three 8-bit ReLU lookups are cheaper."""
    m = make_cell("reluadd", 3, 2, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 64, 3)).astype(np.float32)
    for act_bits, packs in ((4, True), (6, False)):
        ops = scheme.analyse(scheme.quantize(Weights.from_module(m), x, 4, act_bits, "packed"))
        assert any(kind == "lookup2" for kind, *_ in ops.events) == packs
        assert max(ops.lookup_histogram()) <= max(scheme.PACKED_MAX_BITS, act_bits + scheme.LUT_EXTRA_BITS)


def test_missing_environment_gives_a_skipped_row(monkeypatch) -> None:
    monkeypatch.setenv("RNNBENCH_TFHE_PYTHON", "/nonexistent/python")
    point = Point(cell="gru", backend="tfhe", seq_len=1, hidden_size=2, input_size=2, batch_size=1)
    (row,) = runner.run_point(point, runner.Settings(timeout=30))
    assert row["status"] == "skipped"
    assert "make tfhe-env" in row["error_message"]


@needs_env
def test_keys_over_the_limit_are_refused_before_key_generation() -> None:
    """An error row with one line, from Concrete's key sizes after compiling, no keys generated."""
    point = Point.make({"max_key_gb": 0.01}, cell="lstm", backend="tfhe", seq_len=1, hidden_size=2,
                       input_size=2, batch_size=1)
    (row,) = runner.run_point(point, runner.Settings(timeout=300))
    assert row["status"] == "error"
    assert "tfhe.max_key_gb" in row["error_message"] and "\n" not in row["error_message"]


@needs_env
def test_a_circuit_without_parameters_is_a_one_line_error_row() -> None:
    """reluadd at I = 16, H = 4 and 5-bit weights: Concrete's noise constraint cannot be met."""
    point = Point(cell="reluadd", backend="tfhe", seq_len=1, hidden_size=4, input_size=16, batch_size=1)
    (row,) = runner.run_point(point, runner.Settings(timeout=300))
    assert row["status"] == "error"
    assert "finds no parameters" in row["error_message"] and "\n" not in row["error_message"]


@pytest.mark.parametrize("params, message", [
    ({"security": 80}, "insecure"),
    ({"act_bits": 15}, "16 bits"),
    ({"form": "fused"}, "tfhe.form"),
    ({"weight_bits": 12}, "weight_bits"),
    ({"colour": 1}, "unknown"),
])
def test_bad_parameters_get_one_line_errors(params: dict, message: str) -> None:
    with pytest.raises(InvalidParams, match=message) as info:
        tfhe.BACKEND.validate_params(params)
    assert "\n" not in str(info.value)


def test_interval_bounds_hold_on_the_reference() -> None:
    """Every value's exact interval covers what the reference computes (so nothing can overflow)."""
    m = make_cell("gru", 3, 4, seed=1)
    x = 3 * np.random.default_rng(1).standard_normal((4, 8, 3)).astype(np.float32)
    qc = scheme.quantize(Weights.from_module(m), x, 4, 4, "literal")
    seen = []

    class Checking(scheme.NumpyEngine):
        def hint(self, q, lo, hi):
            seen.append((int(np.min(q)), int(np.max(q)), lo, hi))
            return q

    ops = scheme.make_ops(qc, Checking())
    state = (np.zeros((8, 4), np.int64),) * qc.state_inputs
    for t in range(4):
        state = scheme.step(ops, qc, scheme.quantize_inputs(x[t], qc), state)
    assert seen and all(lo <= a and b <= hi for a, b, lo, hi in seen)
