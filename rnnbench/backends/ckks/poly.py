"""Polynomial stand-ins for sigmoid, tanh and relu, and the plaintext cell that uses them.

CKKS can only add and multiply, so every nonlinearity becomes a polynomial on a
calibrated interval ``[-a, a]``. Polynomials are kept and evaluated in the **Chebyshev
basis** of ``u = x / a``: ``p = sum c_k T_k(u)``. On ``[-1, 1]`` every ``T_k`` stays in
``[-1, 1]`` and the coefficients decay with the function's smoothness, so nothing large
is ever added up and cancelled (the monomial basis needs coefficients that grow like
``2^k``): degree 63 is as stable as degree 7. Each fit keeps its function's symmetry
exactly (``tanh`` odd, ``sigmoid - 1/2`` odd, ``relu - x/2 = |x|/2`` even), so half the
coefficients are zero and cost nothing.

Evaluation is **Paterson-Stockmeyer** in the Chebyshev basis (as OpenFHE's
``EvalChebyshevSeries``): baby steps ``T_1 .. T_(k-1)``, giant steps ``T_k, T_2k,
T_4k, ..``; the series is divided by the largest giant step, ``p = q T_G + r``,
recursively, down to leaves of degree below ``k`` that are plaintext-weighted sums of
baby steps. :meth:`Poly.evaluate` is written once with arithmetic operators only, so
the same code runs on NumPy arrays (the plaintext polynomial cell), on torch tensors
(polynomial-aware fine-tuning), on :class:`Level` stand-ins (depth and operation
counts: the cost model) and on ciphertexts (:class:`rnnbench.backends.ckks.he.Enc`):
depth and counts are those of the encrypted evaluation by construction.

``relu`` can also be :class:`CompositeRelu`: ``(x + x sign(x)) / 2`` with ``sign`` a
composition of low-degree odd polynomials (Cheon et al. 2020; Lee et al. 2021).
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.polynomial import chebyshev

from rnnbench.cells import Weights
from rnnbench.cells.equations import NonlinearityOps
from rnnbench.cells.weights import run_numpy

KINDS = ("sigmoid", "tanh", "relu")
EXACT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": lambda x: 0.5 * np.tanh(0.5 * x) + 0.5,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
}
_PARITY = {"sigmoid": 1, "tanh": 1, "relu": 0}  # 1: odd Chebyshev terms, 0: even ones
MAX_DEGREE = 63
# relu's automatic degree stops here: |x| is not smooth, so the error only falls like 1/degree
# and no practical degree meets a tight target. Measured on the trained digits reluadd (H=16,
# first 256 test images, float 91.4%): degree 14 (depth 5) 49%, 30 (depth 6) 88%, 62 (depth 7,
# twice the products) 91%; polynomial-aware fine-tuning brings degree 30 to float accuracy.
RELU_MAX_DEGREE = 30
BABY_STEPS = (2, 4, 8, 16)  # Paterson-Stockmeyer baby-step counts tried per polynomial


class Level:
    """A stand-in for a ciphertext that tracks only its remaining levels; counts products.

    ``tracer`` is anything with a ``counts`` Counter and a ``lowest`` level.
    """

    def __init__(self, tracer: Any, level: int) -> None:
        self.tracer, self.level = tracer, level
        tracer.lowest = min(tracer.lowest, level)

    def _level(self, other: object) -> int:
        return min(self.level, other.level) if isinstance(other, Level) else self.level

    def __add__(self, other: object) -> Level:
        return Level(self.tracer, self._level(other))

    __radd__ = __sub__ = __rsub__ = __add__

    def __neg__(self) -> Level:
        return self

    def __mul__(self, other: object) -> Level:
        self.tracer.counts["ct_ct_mul" if isinstance(other, Level) else "scalar_mul"] += 1
        return Level(self.tracer, self._level(other) - 1)

    __rmul__ = __mul__


@dataclass
class Trace:
    """Counts and lowest level of a run on :class:`Level` values."""

    counts: Counter[str] = field(default_factory=Counter)
    lowest: int = 10**9


@dataclass(frozen=True)
class Poly:
    """``p(x) = sum coeffs[k] T_k(x / a)`` with ``a = half_width``: ``kind`` on ``[-a, a]``.

    ``baby``: the Paterson-Stockmeyer baby-step count ``k`` used to evaluate it.
    """

    kind: str
    half_width: float
    coeffs: tuple[float, ...]
    baby: int = 2

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The reference value (NumPy's Chebyshev series), in float64."""
        return chebyshev.chebval(np.asarray(x, np.float64) / self.half_width, self.coeffs)

    @property
    def degree(self) -> int:
        return _degree(self.coeffs)

    def max_error(self, points: int = 4001) -> float:
        """Largest deviation from the exact function on the interval."""
        x = np.linspace(-self.half_width, self.half_width, points)
        return float(np.max(np.abs(self(x) - EXACT[self.kind](x))))

    def evaluate(self, x: Any) -> Any:
        """``p(x)`` by Paterson-Stockmeyer with operators only (any value type; see the module doc)."""
        return _paterson_stockmeyer(self.coeffs, self.half_width, self.baby, x)

    def describe(self) -> dict[str, Any]:
        return {"form": "chebyshev", "degree": self.degree, "half_width": round(self.half_width, 4),
                "max_err": round(self.max_error(), 6), "depth": depth(self), "baby_steps": self.baby}


def _degree(coeffs: tuple[float, ...]) -> int:
    nonzero = [k for k, c in enumerate(coeffs) if c != 0.0]
    return nonzero[-1] if nonzero else 0


def _paterson_stockmeyer(coeffs: tuple[float, ...], half_width: float, baby: int, x: Any) -> Any:
    """``sum c_k T_k(x / a)``: Chebyshev division by giant steps ``T_(k 2^j)`` down to baby-step leaves.

    ``T_1 = x / a`` costs one plaintext product (none when ``a = 1``); ``T_2n = 2 T_n^2 - 1``
    and ``T_2n+1 = 2 T_n+1 T_n - T_1`` (each ``T_n`` at depth ``ceil(log2 n)`` above
    ``T_1``; doubling is an addition); a leaf's ``c_1 T_1`` is ``(c_1 / a) x``, straight
    from ``x``. Returns a float for a constant polynomial.
    """
    cache: dict[int, Any] = {1: x if half_width == 1.0 else x * (1.0 / half_width)}

    def cheb(n: int) -> Any:
        if n not in cache:
            if n % 2 == 0:
                half = cheb(n // 2)
                square = half * half
                cache[n] = square + square - 1.0
            else:
                product = cheb(n // 2 + 1) * cheb(n // 2)
                cache[n] = product + product - cheb(1)
        return cache[n]

    def plus(total: Any, term: Any) -> Any:
        return term if total is None else total + term

    def leaf(c: list[float]) -> Any:
        total = None
        for n, cn in enumerate(c[1:], start=1):
            if cn != 0.0:
                total = plus(total, x * (cn / half_width) if n == 1 else cheb(n) * cn)
        if total is None:
            return float(c[0])
        return total + c[0] if c[0] != 0.0 else total

    def series(c: list[float]) -> Any:
        while len(c) > 1 and c[-1] == 0.0:
            c = c[:-1]
        deg = len(c) - 1
        if deg < baby:
            return leaf(c)
        giant = baby
        while 2 * giant <= deg:
            giant *= 2
        # T_(G+j) = 2 T_G T_j - T_(G-j): p = q T_G + r with deg q, deg r < G.
        q = [c[giant]] + [2.0 * cj for cj in c[giant + 1:]]
        r = list(c[:giant])
        for j, cj in enumerate(c[giant + 1:], start=1):
            r[giant - j] -= cj
        q_value, r_value = series(q), series(r)
        if isinstance(q_value, float):
            if q_value == 0.0:
                return r_value
            term = cheb(giant) * q_value
        else:
            term = cheb(giant) * q_value
        if isinstance(r_value, float):
            return term + r_value if r_value != 0.0 else term
        return term + r_value

    return series([float(c) for c in coeffs])


def fit(kind: str, degree: int, half_width: float, baby: int | None = None) -> Poly:
    """Least-squares Chebyshev fit on Chebyshev nodes of ``[-a, a]`` (near-minimax), symmetry exact.

    ``baby``: the Paterson-Stockmeyer baby steps; by default the count with the smallest
    depth, then the fewest ciphertext products.
    """
    nodes = np.cos(np.pi * (np.arange(8 * degree + 8) + 0.5) / (8 * degree + 8))
    coeffs = chebyshev.chebfit(nodes, EXACT[kind](half_width * nodes), degree)
    keep = np.arange(degree + 1) % 2 == _PARITY[kind]
    # sigmoid = 1/2 + odd, relu = x/2 + even: the extra term is exact, not fitted.
    extra = {"sigmoid": {0: 0.5}, "relu": {1: 0.5 * half_width}}.get(kind, {})
    for n, value in extra.items():
        keep[n] = True
        coeffs[n] = value
    coeffs[~keep] = 0.0
    terms = tuple(float(c) for c in coeffs)
    if baby is None:
        baby = min(BABY_STEPS, key=lambda k: _structure_cost(terms, k))
    return Poly(kind, float(half_width), terms, baby)


def _structure_cost(coeffs: tuple[float, ...], baby: int) -> tuple[int, int]:
    trace = Trace()
    Poly("", 2.0, coeffs, baby).evaluate(Level(trace, 0))
    return -trace.lowest, trace.counts["ct_ct_mul"]


@functools.cache
def fit_to_error(kind: str, half_width: float, max_err: float, max_degree: int | None = None) -> Poly:
    """The lowest-degree fit whose error on ``[-a, a]`` is at most ``max_err`` (else degree ``max_degree``).

    relu's error is taken relative to ``a`` (its values grow with the interval), and its
    degree is at most :data:`RELU_MAX_DEGREE` unless ``max_degree`` says otherwise.
    """
    if max_degree is None:
        max_degree = RELU_MAX_DEGREE if kind == "relu" else MAX_DEGREE
    target = max_err * (half_width if kind == "relu" else 1.0)
    start = 2 if kind == "relu" else 3
    for degree in range(start, max_degree + 1, 2):
        p = fit(kind, degree, half_width)
        if p.max_error() <= target:
            return p
    return fit(kind, max_degree - (max_degree % 2 != _PARITY[kind]), half_width)


# Odd polynomials whose composition approximates sign(u) on [-1, 1] (monomial coefficients).
# g3 (degree 7) pushes |u| towards 1 fastest near 0; f3 (degree 7, derivative zero at +-1)
# then flattens the result at 1 (Cheon, Kim, Kim and Lee 2020, "Efficient homomorphic
# comparison methods with optimal complexity"). The default g3 o g3 then f3 (depth 10, 11
# with u = x / a): |s(u) - sign(u)| <= SIGN_BOUND for SIGN_FROM <= |u| <= 1 and |s| <= 1,
# so relu's error is at most RELU_BOUND x a (tested). Measured on the trained digits reluadd
# (float 91.4%): 91.8% at depth 11 per relu, the best composite per level; a Chebyshev relu
# of degree 62 gave 90.6% at depth 7, so ``relu=poly`` stays the default.
SIGN_STAGES = {
    "g3": (0.0, 4589 / 1024, 0.0, -16577 / 1024, 0.0, 25614 / 1024, 0.0, -12860 / 1024),
    "f3": (0.0, 35 / 16, 0.0, -35 / 16, 0.0, 21 / 16, 0.0, -5 / 16),
}
DEFAULT_SIGN = ("g3", "g3", "f3")
SIGN_FROM, SIGN_BOUND, RELU_BOUND = 0.05, 0.013, 0.0052


@dataclass(frozen=True)
class CompositeRelu:
    """``relu(x) = x (1/2 + s(x / a) / 2)`` with ``s = stage_n o .. o stage_1`` approximating sign."""

    half_width: float
    stages: tuple[str, ...] = DEFAULT_SIGN
    kind: str = "relu"

    @functools.cached_property
    def _stage_polys(self) -> tuple[Poly, ...]:
        polys = []
        for i, name in enumerate(self.stages):
            coeffs = chebyshev.poly2cheb(SIGN_STAGES[name])
            if i == len(self.stages) - 1:
                coeffs = 0.5 * coeffs  # the final halving folded into the last stage
            terms = tuple(float(c) for c in coeffs)
            polys.append(Poly("sign", self.half_width if i == 0 else 1.0, terms,
                              min(BABY_STEPS, key=lambda k, t=terms: _structure_cost(t, k))))
        return tuple(polys)

    def sign(self, x: np.ndarray) -> np.ndarray:
        """The composite sign approximation at ``x`` (reference, NumPy)."""
        s = np.asarray(x, np.float64)
        for i, p in enumerate(self._stage_polys):
            s = p(s) * (2.0 if i == len(self.stages) - 1 else 1.0)
        return s

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        return x * (0.5 + 0.5 * self.sign(x))

    @property
    def degree(self) -> int:
        return math.prod(_degree(p.coeffs) for p in self._stage_polys)

    def max_error(self, points: int = 4001) -> float:
        x = np.linspace(-self.half_width, self.half_width, points)
        return float(np.max(np.abs(self(x) - EXACT["relu"](x))))

    def evaluate(self, x: Any) -> Any:
        s = x
        for p in self._stage_polys:
            s = p.evaluate(s)
        return x * (s + 0.5)

    def describe(self) -> dict[str, Any]:
        return {"form": "composite", "stages": "+".join(self.stages), "degree": self.degree,
                "half_width": round(self.half_width, 4), "max_err": round(self.max_error(), 6),
                "depth": depth(self)}


StandIn = Poly | CompositeRelu


def _trace(p: StandIn) -> Trace:
    trace = Trace()
    p.evaluate(Level(trace, 0))
    return trace


def depth(p: StandIn) -> int:
    """Multiplicative levels the encrypted evaluation of ``p`` consumes."""
    return -_trace(p).lowest


def ct_mults(p: StandIn) -> int:
    """Ciphertext-ciphertext products of the encrypted evaluation (squarings included)."""
    return _trace(p).counts["ct_ct_mul"]


def pt_mults(p: StandIn) -> int:
    """Ciphertext-plaintext products (scalar times ciphertext) of the encrypted evaluation."""
    return _trace(p).counts["scalar_mul"]


class PlainOps(NonlinearityOps):
    """The ``ops`` of :mod:`rnnbench.cells.equations` on NumPy arrays, exact or polynomial.

    Records the largest input magnitude per kind and, for polynomial stand-ins, how many
    inputs fell outside the fitted interval. ``evaluate``: run the stand-ins' own
    evaluation order (Paterson-Stockmeyer) instead of the reference series.
    """

    def __init__(self, polys: dict[str, StandIn] | None = None, evaluate: bool = False) -> None:
        self.polys = polys
        self.use_evaluate = evaluate
        self.max_abs: Counter[str] = Counter()
        self.outside = 0
        self.evaluated = 0
        self.samples: dict[str, list[np.ndarray]] = {k: [] for k in KINDS}

    def apply(self, kind: str, x: np.ndarray) -> np.ndarray:
        self.max_abs[kind] = max(self.max_abs[kind], float(np.max(np.abs(x))) if x.size else 0.0)
        if self.polys is None:
            self.samples[kind].append(np.abs(np.ravel(x)))
            return EXACT[kind](x)
        p = self.polys[kind]
        self.outside += int(np.count_nonzero(np.abs(x) > p.half_width))
        self.evaluated += x.size
        return p.evaluate(x) if self.use_evaluate else p(x)


def calibrate(
    weights: Weights, x: np.ndarray, make: Callable[[str, float], StandIn], margin: float,
    half_width: float | None = None, rounds: int = 4,
) -> dict[str, StandIn]:
    """Fit each nonlinearity on the range its inputs take on ``x`` (times ``margin``).

    ``make(kind, a)`` builds the stand-in for ``[-a, a]``. The ranges of the exact cell
    seed the fit; the polynomial cell's own ranges (which differ: its values are
    approximations) then widen the intervals until they cover them, so the polynomials
    are evaluated where they were fitted. ``half_width`` fixes every interval instead.
    """
    def fitted(ranges: dict[str, float]) -> dict[str, StandIn]:
        return {k: make(k, half_width or round_up(max(margin * ranges.get(k, 0.0), 1.0))) for k in KINDS}

    exact = PlainOps()
    run_numpy(weights, x, exact)
    polys = fitted(exact.max_abs)
    if half_width:
        return polys
    for _ in range(rounds):
        probe = PlainOps(polys)
        run_numpy(weights, x, probe)
        if probe.outside == 0:
            break
        polys = fitted({k: max(probe.max_abs[k], polys[k].half_width) for k in KINDS})
    return polys


def round_up(a: float) -> float:
    """``a`` rounded up to 2 significant digits: intervals that print as they are."""
    digits = 1 - math.floor(math.log10(a))
    return math.ceil(a * 10**digits) / 10**digits
