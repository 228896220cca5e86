"""The CKKS backend: encrypted results, depth, refreshes, counters and parameter checks.

Sizes are tiny (H=4, two or three steps) and the polynomials have low degrees, so every
cell fits the 16384 ring; still, each encrypted run takes seconds, so results are shared per module.
"""

from __future__ import annotations

import functools
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from rnnbench.backends import InvalidParams
from rnnbench.backends.ckks import BACKEND, params, poly
from rnnbench.cells import Weights, make_cell
from rnnbench.cells.weights import run_numpy

ROOT = Path(__file__).resolve().parents[1]
# GRU and LSTM steps within 9 levels; reluadd's 16 levels need mid-step refreshes (16384 ring).
SMALL = {"sigmoid_degree": 3, "tanh_degree": 3, "relu_degree": 2}


def weights(cell: str, hidden: int = 4, inputs: int = 3) -> Weights:
    return Weights.from_module(make_cell(cell, inputs, hidden, seed=1))


def inputs(seq_len: int, batch: int, size: int = 3) -> np.ndarray:
    return np.random.default_rng(2).standard_normal((seq_len, batch, size)).astype(np.float32)


@pytest.fixture(scope="module")
def runs():
    """Each (cell, packing) prepared and run once on 2 steps of 2 sequences."""
    cache = {}

    def get(cell: str, packing: str):
        if (cell, packing) not in cache:
            w, x = weights(cell), inputs(2, 2)
            prepared = BACKEND.prepare(w, BACKEND.validate_params({**SMALL, "packing": packing}), x)
            cache[cell, packing] = (w, x, prepared, prepared.run(x))
        return cache[cell, packing]

    return get


@pytest.mark.parametrize("packing", ["batch", "vector"])
@pytest.mark.parametrize("cell", ["gru", "lstm", "reluadd"])
def test_decrypted_outputs_match_plaintext_polynomial_cell(runs, cell, packing):
    w, x, prepared, out = runs(cell, packing)
    plain = run_numpy(w, x, poly.PlainOps(prepared.polys))
    assert out.shape == (2, 2, 4)
    np.testing.assert_allclose(out, plain, atol=1e-3, rtol=0)
    assert prepared.facts()["ckks_poly_max_abs_err"] <= 1e-3


@pytest.mark.parametrize("packing", ["batch", "vector"])
@pytest.mark.parametrize("cell", ["gru", "lstm", "reluadd"])
def test_counters_match_cost_model(runs, cell, packing):
    _, _, prepared, _ = runs(cell, packing)
    model, counted = prepared.model_counts(), prepared.counted()
    assert counted["ct_ct_mul"] == model["ct_ct_mul"]
    assert counted.get("rotations", 0) == model["rotations"]
    # Plaintext products depend on where linear combinations meet their consumers (a term
    # computed at two levels counts twice, a merged combination once per term): not modelled.
    assert counted["ct_pt_mul"] >= prepared.packing.model_pt_mults()
    facts = prepared.facts()
    assert facts["ckks_ct_ct_mul"] == model["ct_ct_mul"] and facts["ckks_rotations"] == model["rotations"]
    assert (model["rotations"] > 0) == (packing == "vector")


@pytest.mark.parametrize("cell", ["gru", "lstm", "reluadd"])
def test_step_consumes_exactly_the_computed_depth(runs, cell):
    """A fresh state at the top level ends a step where the level tracer says, as SEAL reports it
    (``depth`` levels lower, or, with mid-step refreshes, where the last refreshed value ends)."""
    w, x, prepared, _ = runs(cell, "vector")
    engine, packing = prepared.engine, prepared.packing
    state = tuple(packing.encrypt_state(engine, np.zeros((1, 4))) for _ in range(2 if cell == "lstm" else 1))
    x_ct = packing.encrypt_inputs(engine, np.asarray(x[:1, :1], np.float64))[0]
    depth = params.levels_needed(cell, prepared.polys, 1)
    assert depth == prepared.facts()["ckks_depth_per_step"]
    mid_step = prepared.setup.mid_step_refresh
    assert mid_step == (cell == "reluadd") and (depth > engine.top) == mid_step
    tracer = params.trace_steps(cell, prepared.polys, 1, engine.top, mid_step)
    new = prepared.step(state, x_ct)
    assert min(part.level for part in new) == tracer.lowest
    if not mid_step:
        assert engine.top - new[0].level == depth


def test_depth_is_tight(runs):
    """With one level fewer than the computed depth the step cannot be evaluated."""
    w, x, prepared, _ = runs("gru", "vector")
    depth = prepared.facts()["ckks_depth_per_step"]
    short = BACKEND.prepare(w, BACKEND.validate_params({**SMALL, "packing": "vector"}), x[:1])
    from rnnbench.backends.ckks.he import Engine
    short.engine = Engine(params.Setup(16384, 37, depth - 1, 1), short.packing.rotation_steps())
    with pytest.raises(Exception):  # noqa: B017 (SEAL: end of modulus switching chain reached)
        short.run(x[:1])


def test_refreshes_counted_once_per_round_trip(runs):
    _, x, prepared, _ = runs("gru", "batch")
    facts = prepared.facts()
    every = facts["ckks_refresh_every"]
    assert facts["ckks_refreshes"] == math.ceil(x.shape[0] / every) - 1 == 1
    assert facts["ckks_refresh_s"] > 0
    # Uploads: 2 steps x 3 input features, the zero state and 1 refreshed state (4 units each).
    fresh = prepared.engine.nbytes(prepared.engine.encrypt(np.zeros(1)))
    assert facts["ckks_bytes_to_server"] == (2 * 3 + 4 + 1 * 4) * fresh


def test_polynomial_structure():
    for kind, degree in (("sigmoid", 7), ("tanh", 7), ("relu", 6), ("relu", 2)):
        p = poly.fit(kind, degree, 4.0)
        parity = 0 if kind == "relu" else 1
        extra = {"sigmoid": 0, "relu": 1}.get(kind)
        assert all(c == 0 for k, c in enumerate(p.coeffs) if k % 2 != parity and k != extra)
        # u = x / a costs one level, then T_d needs ceil(log2(d + 1)) more.
        assert poly.depth(p) == 1 + math.ceil(math.log2(degree + 1))
    assert poly.fit("tanh", 7, 3.0).max_error() < 0.02
    dense = poly.Poly("tanh", 1.0, tuple(float(k + 1) for k in range(8)))
    # a = 1: u = x; T_2, T_4 (2 squarings), then p = q T_4 + r with q, r = q' T_2 + r' (3 products).
    assert poly.depth(dense) == 3 and poly.ct_mults(dense) == 5


@pytest.mark.parametrize("value", ["numpy", "torch"])
def test_paterson_stockmeyer_equals_numpy_chebyshev(value):
    """The evaluation order used under encryption computes NumPy's Chebyshev series, to rounding."""
    from numpy.polynomial import chebyshev

    rng = np.random.default_rng(4)
    for degree, baby in ((31, 2), (31, 8), (63, 4), (62, 2), (5, 16)):
        coeffs = tuple(rng.standard_normal(degree + 1) / (1 + np.arange(degree + 1)))
        p = poly.Poly("tanh", 40.0, coeffs, baby)
        x = rng.uniform(-40, 40, 1000)
        got = p.evaluate(x) if value == "numpy" else p.evaluate(__import__("torch").from_numpy(x)).numpy()
        np.testing.assert_allclose(got, chebyshev.chebval(x / 40.0, coeffs), atol=1e-12, rtol=0)


def test_degrees_follow_the_error_target():
    low, high = poly.fit_to_error("tanh", 8.0, 1e-2), poly.fit_to_error("tanh", 8.0, 1e-4)
    assert low.max_error() <= 1e-2 and high.max_error() <= 1e-4 and low.degree < high.degree
    assert poly.fit("tanh", low.degree - 2, 8.0).max_error() > 1e-2  # the lowest degree that meets it
    assert poly.fit_to_error("tanh", 8.0, 1e-12).degree == poly.MAX_DEGREE


@pytest.mark.parametrize("kind,degree,half_width", [
    ("tanh", 31, 40.0), ("tanh", 7, 1.5), ("relu", 6, 40.0), ("sigmoid", 63, 20.0),
])
def test_encrypted_chebyshev_matches_plaintext(kind, degree, half_width):
    """Decrypts within 1e-4 of NumPy's Chebyshev series, consuming exactly the computed depth.

    (In the monomial basis a degree-7 tanh on [-20, 20] once decrypted 5 away, and SEAL
    refused degree 15 with a "transparent" ciphertext.)
    """
    from numpy.polynomial import chebyshev

    from rnnbench.backends.ckks.he import Enc

    engine = _wide_engine()
    p = poly.fit(kind, degree, half_width)
    x = np.random.default_rng(3).uniform(-half_width, half_width, engine.slots)
    result = p.evaluate(Enc(engine, [engine.encrypt(x)]))
    np.testing.assert_allclose(engine.decrypt(result.cts[0]), chebyshev.chebval(x / half_width, p.coeffs),
                               atol=1e-4, rtol=0)
    assert result.level == engine.top - poly.depth(p)


def test_depth_is_exact_for_every_stand_in():
    """Each stand-in (Chebyshev, composite relu) runs with ``depth`` levels and fails with one fewer."""
    from rnnbench.backends.ckks.he import Enc, Engine

    for p in (poly.fit("sigmoid", 15, 6.0), poly.fit("relu", 14, 3.0), poly.CompositeRelu(3.0)):
        d = poly.depth(p)
        x = np.random.default_rng(5).uniform(-p.half_width, p.half_width, 64)
        exact = Engine(params.Setup(16384, 30, d, 1))
        result = p.evaluate(Enc(exact, [exact.encrypt(x)]))
        assert result.level == 0
        np.testing.assert_allclose(exact.decrypt(result.cts[0])[:64], p(x), atol=1e-3, rtol=0)
        short = Engine(params.Setup(16384, 30, d - 1, 1))
        with pytest.raises(Exception):  # noqa: B017 (SEAL: end of modulus switching chain reached)
            p.evaluate(Enc(short, [short.encrypt(x)]))


@functools.cache
def _wide_engine():
    from rnnbench.backends.ckks.he import Engine

    return Engine(params.Setup(16384, 37, params.max_levels(16384, 37), 1))


def test_chain_holds_only_the_levels_the_refresh_schedule_uses():
    """Fewer primes make every operation cheaper: the chain is the shortest with the same schedule."""
    w = weights("gru", hidden=16, inputs=16)
    cal = np.random.default_rng(8).standard_normal((1, 512, 16))
    polys = params.stand_ins(w, BACKEND.validate_params({}), cal)
    setup = params.choose("gru", BACKEND.validate_params({}), 1, polys)
    assert setup.mid_step_refresh
    most = params.max_levels(setup.poly_degree, setup.scale_bits)
    count = params.mid_step_refreshes("gru", polys, most)
    assert setup.levels < most and params.mid_step_refreshes("gru", polys, setup.levels) == count
    assert params.mid_step_refreshes("gru", polys, setup.levels - 1) != count
    # Without mid-step refreshes: exactly the levels of the chosen refresh interval.
    small = params.degree_polys(BACKEND.validate_params(SMALL))
    plain = params.choose("gru", BACKEND.validate_params(SMALL), 10, small)
    assert plain.levels == params.levels_needed("gru", small, plain.refresh_every)
    assert params.levels_needed("gru", small, plain.refresh_every + 1) > params.max_levels(
        plain.poly_degree, plain.scale_bits)


def test_linear_combination_computed_once_at_its_consumers_level():
    """``sum c_i v_i + c`` over values at different levels: no level adjust, one rescale, at the
    level the tracer predicts; a product with a value of more levels mod-switches it (no adjust)."""
    from rnnbench.backends.ckks.he import Enc, Engine, LinComb

    engine = Engine(params.Setup(8192, 30, 4, 1))
    a = np.random.default_rng(9).uniform(-1, 1, engine.slots)
    x = Enc(engine, [engine.encrypt(a)])
    y = x * x
    y.settle()  # level 3
    z = y * y
    z.settle()  # level 2

    def combine(x, y, z):
        return x * 0.5 + y * -1.5 + z * 2.0 + 0.25

    before = Counter(engine.counts)
    combo = combine(x, y, z)
    assert isinstance(combo, LinComb) and engine.counts == before  # nothing computed yet
    trace = poly.Trace()
    assert combo.level == combine(*(poly.Level(trace, lv) for lv in (4, 3, 2))).level == 1
    out = combo.cts
    assert engine.level(out[0]) == 1
    assert engine.counts["rescales"] - before["rescales"] == 1
    assert engine.counts["ct_pt_mul"] - before["ct_pt_mul"] == 3
    assert engine.counts["level_adjusts"] == 0
    np.testing.assert_allclose(engine.decrypt(out[0]), 0.5 * a - 1.5 * a**2 + 2 * a**4 + 0.25, atol=1e-4)

    before = Counter(engine.counts)
    product = (z * 3.0) * x  # z * 3 is computed at level 1; x (level 4) is mod-switched down to it
    assert product.level == 0
    np.testing.assert_allclose(engine.decrypt(product.cts[0]), 3 * a**5, atol=1e-4)
    assert engine.counts["rescales"] - before["rescales"] == 2  # the combination's and the product's
    assert engine.counts["level_adjusts"] == 0

    before = Counter(engine.counts)
    pending = z * z  # a product not yet relinearised or rescaled, level 1
    total = x * 0.5 + 1.0 + pending  # computed unrescaled at the product's level, rescaled with it
    assert total.pending and total.level == 1
    np.testing.assert_allclose(engine.decrypt(total.cts[0]), 0.5 * a + 1.0 + a**8, atol=1e-4)
    assert engine.counts["rescales"] - before["rescales"] == 1
    assert engine.counts["relinearizations"] - before["relinearizations"] == 1


def test_out_of_range_fraction_recorded_and_small_with_the_calibration_sample(runs):
    w, x, prepared, _ = runs("gru", "vector")
    probe = poly.PlainOps(prepared.polys)
    run_numpy(w, x, probe)
    assert prepared.facts()["ckks_out_of_range_frac"] == probe.outside / probe.evaluated
    # One sequence (the run's own batch at B=1, as calibration once was) leaves inputs outside
    # the intervals (where polynomials explode); the backend's 4096 leave under 0.1%.
    w = weights("gru", hidden=16, inputs=16)
    fresh = np.random.default_rng(7).standard_normal((1, 1000, 16))
    fractions = {}
    for n in (1, BACKEND.calibration_sequences):
        cal = np.random.default_rng(8).standard_normal((1, n, 16))
        probe = poly.PlainOps(params.stand_ins(w, BACKEND.validate_params({}), cal))
        with np.errstate(over="ignore", invalid="ignore"):
            run_numpy(w, fresh, probe)
        fractions[n] = probe.outside / probe.evaluated
    assert fractions[BACKEND.calibration_sequences] < 1e-3 < fractions[1]


def test_composite_sign_error_bound():
    """The default composite sign: within SIGN_BOUND of sign(u) past SIGN_FROM; relu within RELU_BOUND x a."""
    c = poly.CompositeRelu(7.0)
    u = np.linspace(-1, 1, 400_001)
    s = c.sign(7.0 * u)
    far = np.abs(u) >= poly.SIGN_FROM
    assert np.max(np.abs(s[far] - np.sign(u[far]))) <= poly.SIGN_BOUND
    assert np.max(np.abs(s)) <= 1 + 1e-12
    assert c.max_error(400_001) <= poly.RELU_BOUND * 7.0
    # The stand-in's own evaluation order (what runs encrypted) computes the same function.
    np.testing.assert_allclose(c.evaluate(7.0 * u), c(7.0 * u), atol=1e-12, rtol=0)


def test_insecure_or_impossible_params_refused():
    with pytest.raises(InvalidParams, match="insecure"):
        BACKEND.validate_params({"poly_degree": 4096, "scale_bits": 40})
    with pytest.raises(InvalidParams, match="scale_bits"):
        BACKEND.validate_params({"scale_bits": 59})
    with pytest.raises(InvalidParams, match="poly_degree"):
        BACKEND.validate_params({"poly_degree": 1000})
    with pytest.raises(InvalidParams, match="unknown"):
        BACKEND.validate_params({"bootstrapping": 1})
    with pytest.raises(InvalidParams, match=r"need \d+ levels"):
        BACKEND.check_cell("gru", {"poly_degree": 8192}, 10)
    with pytest.raises(InvalidParams, match="refresh_every"):
        BACKEND.check_cell("gru", {"refresh_every": 5}, 10)
    BACKEND.check_cell("gru", {"refresh_every": 2}, 10)  # two steps of 11 levels: fit the 32768 ring
    assert params.choose("gru", BACKEND.validate_params({"refresh_every": 2}), 10).poly_degree == 32768


@pytest.mark.parametrize("args", [
    ["--ckks-poly-degree", "8192"],
    ["--ckks-scale-bits", "61"],
    ["--ckks-refresh-every", "7"],
    ["-p", "ckks.packing=diagonal"],
])
def test_cli_refuses_with_one_line(args, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "from rnnbench.cli import main; main()", "sweep", "--cells", "gru",
         "--backends", "ckks", "--seq-lens", "10", "--out", str(tmp_path), *args],
        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnbench: error: ") and "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


def test_mid_step_refreshes_keep_reluadd_on_the_16384_ring():
    """16 levels per step; the client refreshes what runs short instead."""
    w, x = weights("reluadd"), inputs(1, 1)
    prepared = BACKEND.prepare(w, BACKEND.validate_params({**SMALL, "packing": "vector"}), x)
    assert prepared.setup.poly_degree == 16384 and prepared.setup.mid_step_refresh
    out = prepared.run(x)
    np.testing.assert_allclose(out, run_numpy(w, x, poly.PlainOps(prepared.polys)), atol=1e-3, rtol=0)
    per_step = params.mid_step_refreshes("reluadd", prepared.polys,
                                         prepared.setup.levels)
    assert per_step >= 1
    assert prepared.facts()["ckks_refreshes"] == per_step  # round trips, counted while running
    forced = params.choose("reluadd", BACKEND.validate_params({**SMALL, "poly_degree": 32768}), 2)
    assert forced.poly_degree == 32768 and not forced.mid_step_refresh


def test_auto_packing_follows_the_batch_size():
    w = weights("gru")
    chosen = {batch: BACKEND.prepare(w, BACKEND.validate_params({}), inputs(1, batch)).packing.name
              for batch in (1, 512)}
    assert chosen == {1: "vector", 512: "batch"}
