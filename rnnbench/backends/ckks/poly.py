"""Polynomial stand-ins for sigmoid, tanh and relu, and the plaintext cell that uses them.

CKKS can only add and multiply, so every nonlinearity becomes a polynomial fitted on
``[-a, a]``. Coefficients are kept in the normalised variable ``u = x / a`` (all powers
of ``u`` stay in ``[-1, 1]``, which keeps CKKS scales and precision healthy), and the
fit respects each function's symmetry exactly: ``tanh`` is odd, ``sigmoid - 1/2`` is
odd and ``relu - x/2 = |x|/2`` is even, so half the coefficients are exactly zero and
cost nothing to evaluate.

The depth-optimal evaluation order used under encryption is fixed here too
(:func:`depth`, :func:`ct_mults`): split ``p = q + u^(2^j) r`` at the largest power of
two ``2^j <= deg p``, recursively, with the scalar coefficients folded into the
degree-1 leaves. A degree-``d`` polynomial then costs ``ceil(log2(d + 1))`` levels,
plus one on a wide interval (:attr:`Poly.prescaled`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import chebyshev, polynomial

from rnnbench.cells import Weights
from rnnbench.cells.equations import NonlinearityOps
from rnnbench.cells.weights import run_numpy

KINDS = ("sigmoid", "tanh", "relu")
EXACT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": lambda x: 0.5 * np.tanh(0.5 * x) + 0.5,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
}
# Powers of u that each function's symmetric part keeps (besides what PARITY_EXTRA adds).
_PARITY = {"sigmoid": 1, "tanh": 1, "relu": 0}  # 1: odd powers, 0: even powers
# Under encryption the powers u^(2^j) of u = x / a come for free as x^(2^j) declared at
# a^(2^j) times its scale; the terms that multiply u^(2^j) must then be computed at a scale
# a^(2^j) times smaller, and so on down the nested splits (a^6 for degree 6 or 7, a^14 for
# 15), with the coefficients amplifying what that costs: a degree-7 tanh on [-20, 20] came
# out wrong by 5, the trained digits GRU's cell (21 bits) by 1.6e-2. Past 20 bits x is
# scaled to u with a plaintext product first, one level more; below them the cells
# measured stayed within 1e-4 of the plaintext polynomial cell (19 bits: reluadd, batch
# packing, H=8), and the level saved keeps the scale, hence the precision, higher.
MAX_FREE_LOSS = 2.0**20


@dataclass(frozen=True)
class Poly:
    """``p(x) = sum coeffs[k] * (x / a)^k`` with ``a = half_width``: ``kind`` on ``[-a, a]``."""

    kind: str
    half_width: float
    coeffs: tuple[float, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return polynomial.polyval(np.asarray(x, np.float64) / self.half_width, self.coeffs)

    @property
    def degree(self) -> int:
        return len(self.coeffs) - 1

    @property
    def prescaled(self) -> bool:
        """Whether the encrypted evaluation computes ``u = x / a`` first (see MAX_FREE_LOSS)."""
        if _degree(self.coeffs) < 2:
            return False
        loss = self.half_width ** _scale_exponent(self.coeffs) * max(1.0, max(abs(c) for c in self.coeffs))
        return loss > MAX_FREE_LOSS

    def max_error(self, points: int = 4001) -> float:
        """Largest deviation from the exact function on the interval."""
        x = np.linspace(-self.half_width, self.half_width, points)
        return float(np.max(np.abs(self(x) - EXACT[self.kind](x))))


def fit(kind: str, degree: int, half_width: float) -> Poly:
    """Least-squares fit on Chebyshev nodes of ``[-a, a]`` (near-minimax), symmetry enforced."""
    nodes = np.cos(np.pi * (np.arange(8 * degree + 8) + 0.5) / (8 * degree + 8))
    target = EXACT[kind](half_width * nodes)
    coeffs = chebyshev.cheb2poly(chebyshev.chebfit(nodes, target, degree))
    keep = np.arange(degree + 1) % 2 == _PARITY[kind]
    # sigmoid = 1/2 + odd, relu = x/2 + even: the extra term is exact, not fitted.
    extra = {"sigmoid": {0: 0.5}, "relu": {1: 0.5 * half_width}}.get(kind, {})
    for power, value in extra.items():
        keep[power] = True
        coeffs[power] = value
    coeffs[~keep] = 0.0
    return Poly(kind, float(half_width), tuple(float(c) for c in coeffs))


def _split(coeffs: tuple[float, ...]) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
    """``p = q + u^(2^j) r`` at the largest ``2^j <= deg p``."""
    j = int(math.floor(math.log2(_degree(coeffs))))
    return j, coeffs[: 2**j], coeffs[2**j:]


def _scale_exponent(coeffs: tuple[float, ...]) -> int:
    """``e`` such that the deepest term is computed at ``a^e`` times less than the result's scale."""
    if _degree(coeffs) <= 1:
        return 0
    j, _, high = _split(coeffs)
    return 2**j + _scale_exponent(high)


def _degree(coeffs: tuple[float, ...]) -> int:
    nonzero = [k for k, c in enumerate(coeffs) if c != 0.0]
    return nonzero[-1] if nonzero else 0


def depth(p: Poly) -> int:
    """Multiplicative levels the encrypted evaluation of ``p`` consumes."""
    # Prescaling delays the power chain by one level, and the deepest path runs through
    # the highest power, so it adds exactly one level.
    return _depth(p.coeffs) + (1 if p.prescaled else 0)


def _depth(coeffs: tuple[float, ...]) -> int:
    deg = _degree(coeffs)
    if deg <= 1:
        return deg
    j, q, r = _split(coeffs)
    return max(_depth(q), 1 + max(j, _depth(r)))


def ct_mults(p: Poly) -> int:
    """Ciphertext-ciphertext products of the encrypted evaluation (squarings included)."""
    deg = _degree(p.coeffs)
    if deg <= 1:
        return 0
    return int(math.floor(math.log2(deg))) + _split_products(p.coeffs)


def _split_products(coeffs: tuple[float, ...]) -> int:
    if _degree(coeffs) <= 1:
        return 0
    _, q, r = _split(coeffs)
    return _split_products(q) + _split_products(r) + (1 if _degree(r) >= 1 else 0)


def pt_mults(p: Poly) -> int:
    """Ciphertext-plaintext products: one per degree-1 leaf, per constant times a power, one to prescale."""
    return _pt_mults(p.coeffs) + (1 if p.prescaled else 0)


def _pt_mults(coeffs: tuple[float, ...]) -> int:
    deg = _degree(coeffs)
    if deg == 0:
        return 0
    if deg == 1:
        return 1
    _, q, r = _split(coeffs)
    r_part = _pt_mults(r) if _degree(r) >= 1 else (1 if any(r) else 0)
    return _pt_mults(q) + r_part


class PlainOps(NonlinearityOps):
    """The ``ops`` of :mod:`rnnbench.cells.equations` on NumPy arrays, exact or polynomial.

    Records the largest input magnitude per kind and, for polynomial stand-ins, how many
    inputs fell outside the fitted interval.
    """

    def __init__(self, polys: dict[str, Poly] | None = None) -> None:
        self.polys = polys
        self.max_abs: Counter[str] = Counter()
        self.outside = 0
        self.evaluated = 0

    def apply(self, kind: str, x: np.ndarray) -> np.ndarray:
        self.max_abs[kind] = max(self.max_abs[kind], float(np.max(np.abs(x))) if x.size else 0.0)
        if self.polys is None:
            return EXACT[kind](x)
        poly = self.polys[kind]
        self.outside += int(np.count_nonzero(np.abs(x) > poly.half_width))
        self.evaluated += x.size
        return poly(x)


def run_plain(weights: Weights, x: np.ndarray, ops: PlainOps) -> np.ndarray:
    """The cell on ``x`` [T, B, I] in float64 with ``ops``' nonlinearities; outputs [T, B, H]."""
    return run_numpy(weights, x, ops)


def calibrate(
    weights: Weights, x: np.ndarray, degrees: dict[str, int], margin: float,
    half_width: float | None = None, rounds: int = 4,
) -> dict[str, Poly]:
    """Fit each nonlinearity on the range its inputs take on ``x`` (times ``margin``).

    The ranges of the exact cell seed the fit; the polynomial cell's own ranges (which
    differ: its values are approximations) then widen the intervals until they cover
    them, so the polynomials are evaluated where they were fitted. ``half_width`` fixes
    every interval instead.
    """
    def fitted(ranges: dict[str, float]) -> dict[str, Poly]:
        return {k: fit(k, degrees[k], half_width or max(margin * ranges.get(k, 0.0), 1.0))
                for k in KINDS}

    exact = PlainOps()
    run_plain(weights, x, exact)
    polys = fitted(exact.max_abs)
    if half_width:
        return polys
    for _ in range(rounds):
        probe = PlainOps(polys)
        run_plain(weights, x, probe)
        if probe.outside == 0:
            break
        polys = fitted({k: max(probe.max_abs[k], polys[k].half_width) for k in KINDS})
    return polys
