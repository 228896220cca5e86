"""CKKS parameters: 128-bit security, depth of a cell step, automatic choice and validation.

A step's multiplicative depth comes from running the cell equations on :class:`Level`
values, which only track how many rescaling levels each value has left; the same
run counts the ciphertext-ciphertext products and polynomial evaluations (the cost
model the encrypted run's counters are checked against). The coefficient modulus is
``[edge, scale x levels, edge]`` bits: the first prime holds the decrypted result
with headroom, the last is the key-switching prime.

A step too deep for the 16384 ring (reluadd) need not move to the 32768 ring, whose
operations cost 4-8 times more: with *mid-step refreshes* the server sends a
polynomial's input that lacks the levels for it back to the client for re-encryption.
The tracer applies the same rule as the evaluator, so it also counts those round trips.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rnnbench.backends.base import InvalidParams
from rnnbench.backends.ckks import poly
from rnnbench.backends.ckks.poly import Level
from rnnbench.cells import Weights
from rnnbench.cells.equations import GATES, NonlinearityOps
from rnnbench.cells.reference import STEPS

# Largest total coefficient modulus (bits) per polynomial degree for 128-bit classical
# security with a ternary secret (HomomorphicEncryption.org standard; SEAL's TC128).
MAX_MODULUS_BITS = {4096: 109, 8192: 218, 16384: 438, 32768: 881}
PACKINGS = ("auto", "batch", "vector")
HEADROOM_BITS = 15  # first prime = scale + headroom: decrypted values up to 2^14 in magnitude
MAX_PRIME_BITS = 60  # SEAL's limit per prime
AUTO_SCALE_BITS = (30, MAX_PRIME_BITS - HEADROOM_BITS)  # range the automatic choice picks from
DEFAULTS: dict[str, Any] = {
    "packing": "auto", "poly_degree": "auto", "scale_bits": "auto", "refresh_every": "auto",
    "sigmoid_degree": "auto", "tanh_degree": "auto", "relu_degree": "auto", "poly_err": 3e-3,
    "relu": "poly", "interval": "auto", "margin": 1.2,
}
RELU_FORMS = ("poly", "composite")


@dataclass(frozen=True)
class Setup:
    """The encryption parameters of one point."""

    poly_degree: int
    scale_bits: int
    levels: int  # rescaling levels of a fresh ciphertext
    refresh_every: int  # steps between refreshes of the state
    mid_step_refresh: bool = False  # polynomial inputs short of levels are refreshed by the client

    @property
    def edge_bits(self) -> int:
        return edge_bits(self.scale_bits)

    @property
    def coeff_bits(self) -> list[int]:
        return [self.edge_bits] + [self.scale_bits] * self.levels + [self.edge_bits]


def edge_bits(scale_bits: int) -> int:
    return scale_bits + HEADROOM_BITS


def max_levels(poly_degree: int, scale_bits: int) -> int:
    """Levels that fit in the secure modulus budget (negative: not even a fresh ciphertext fits)."""
    return (MAX_MODULUS_BITS[poly_degree] - 2 * edge_bits(scale_bits)) // scale_bits


class LevelTracer(NonlinearityOps):
    """The ``ops`` namespace for :class:`Level` values: a polynomial costs its depth."""

    def __init__(self, polys: Mapping[str, poly.Poly], refresh_top: int | None = None) -> None:
        self.polys = polys
        self.depths = {kind: poly.depth(p) for kind, p in polys.items()}
        self.refresh_top = refresh_top  # the level a mid-step refresh restores (None: no refreshes)
        self.lowest = 10**9
        self.refreshes = 0
        self.counts: Counter[str] = Counter()

    def apply(self, kind: str, v: Level) -> Level:
        self.counts[kind] += 1
        if self.refresh_top is not None and v.level < self.depths[kind]:
            self.refreshes += 1
            v = Level(self, self.refresh_top)
        return self.polys[kind].evaluate(v)


def trace_steps(cell: str, polys: Mapping[str, poly.Poly], steps: int, top: int = 10**6,
                mid_step_refresh: bool = False) -> LevelTracer:
    """Run ``steps`` steps from fresh state at level ``top``; gate pre-activations cost one level."""
    tracer = LevelTracer(polys, top if mid_step_refresh else None)
    h = Level(tracer, top)
    state = (h, Level(tracer, top)) if cell == "lstm" else h
    for _ in range(steps):
        h = state[0] if cell == "lstm" else state
        pre = tuple(Level(tracer, h.level - 1) for _ in range(GATES[cell]))
        state = STEPS[cell](tracer, pre, pre, state)
    return tracer


def levels_needed(cell: str, polys: Mapping[str, poly.Poly], steps: int) -> int:
    """Levels a fresh state needs to run ``steps`` steps without a refresh."""
    top = 10**6
    return top - trace_steps(cell, polys, steps, top).lowest


def stand_in_maker(params: Mapping[str, Any]) -> Callable[[str, float], poly.StandIn]:
    """``make(kind, a)``: the stand-in ``params`` ask for on ``[-a, a]``.

    A given degree is fitted as it is; ``auto`` takes the lowest degree within
    ``poly_err`` (relu: ``poly_err x a``) up to 63; ``relu=composite`` the composite ReLU.
    """
    def make(kind: str, half_width: float) -> poly.StandIn:
        if kind == "relu" and params["relu"] == "composite":
            return poly.CompositeRelu(half_width)
        degree = params[f"{kind}_degree"]
        if degree == "auto":
            return poly.fit_to_error(kind, half_width, params["poly_err"])
        return poly.fit(kind, degree, half_width)

    return make


def stand_ins(weights: Weights, params: Mapping[str, Any],
              calibration: np.ndarray) -> dict[str, poly.StandIn]:
    """The stand-ins the backend evaluates for ``weights``: fitted on ``calibration`` as ``params`` ask."""
    interval = None if params["interval"] == "auto" else float(params["interval"])
    return poly.calibrate(weights, calibration, stand_in_maker(params), params["margin"], interval)


def degree_polys(params: Mapping[str, Any]) -> dict[str, poly.StandIn]:
    """Placeholders with the structure of the stand-ins ``params`` ask for, on a narrow interval."""
    make = stand_in_maker(params)
    return {k: make(k, 2.0) for k in poly.KINDS}


def mid_step_refreshes(cell: str, polys: Mapping[str, poly.Poly], levels: int) -> int | None:
    """Mid-step refreshes one step needs with ``levels`` levels (``None``: a product runs out)."""
    tracer = trace_steps(cell, polys, 1, levels, mid_step_refresh=True)
    return tracer.refreshes if tracer.lowest >= 0 else None


def choose(cell: str, params: Mapping[str, Any], seq_len: int,
           polys: Mapping[str, poly.Poly] | None = None) -> Setup:
    """The encryption parameters for ``cell`` at 128-bit security.

    Ring: the smallest whose secure modulus holds one step at the lowest automatic scale;
    if that is the 32768 ring, the 16384 ring with mid-step refreshes instead (a given
    ring that cannot hold a step gets mid-step refreshes too, if they make it work).
    Scale: the largest that still holds ``refresh_every`` steps (one if automatic), or
    with mid-step refreshes the largest among those needing the fewest: CKKS noise is
    relative to the scale, and the polynomial evaluation divides it by up to
    ``a^(deg - 1)``, so spare bits go into precision. Refresh interval: as many steps as
    the levels hold. Chain: only as many levels as that schedule uses (the same refresh
    interval, the same mid-step round trips), since every SEAL operation costs in
    proportion to the primes left (a relinearisation: to their square). ``polys``: the
    fitted polynomials (default: placeholders on a narrow interval, which may need a level
    less). Raises :class:`InvalidParams` for a user setting that cannot work.
    """
    polys = polys or degree_polys(params)
    refresh_every = params["refresh_every"]
    steps_wanted = 1 if refresh_every == "auto" else min(refresh_every, seq_len)
    depth = levels_needed(cell, polys, steps_wanted)
    scales = (range(AUTO_SCALE_BITS[1], AUTO_SCALE_BITS[0] - 1, -1) if params["scale_bits"] == "auto"
              else [params["scale_bits"]])
    if params["poly_degree"] == "auto":
        options = [(8192, False), (16384, False), (16384, True), (32768, False)]
    else:
        options = [(params["poly_degree"], False), (params["poly_degree"], True)]
    for n, mid in options:
        if not mid:
            fitting = [bits for bits in scales if max_levels(n, bits) >= depth]
            if fitting:
                setup = _with_refresh_interval(cell, polys, seq_len, refresh_every,
                                               Setup(n, fitting[0], max_levels(n, fitting[0]), 1))
                return replace(setup, levels=levels_needed(cell, polys, setup.refresh_every))
        elif steps_wanted == 1:
            needs = {bits: mid_step_refreshes(cell, polys, max_levels(n, bits))
                     for bits in scales if max_levels(n, bits) >= 1}
            feasible = [(count, -bits) for bits, count in needs.items() if count is not None]
            if feasible:
                count, bits = min(feasible)[0], -min(feasible)[1]
                # The shortest chain with as few round trips: every operation then runs on fewer primes.
                levels = min(lv for lv in range(1, max_levels(n, bits) + 1)
                             if mid_step_refreshes(cell, polys, lv) == count)
                return Setup(n, bits, levels, 1, mid_step_refresh=True)
    n, bits = options[-1][0], scales[-1]
    raise InvalidParams(
        f"ckks: {steps_wanted} {cell} step(s) need {depth} levels, but poly_degree={n} with "
        f"scale_bits={bits} allows only {max(max_levels(n, bits), 0)} at 128-bit security "
        f"(at most {MAX_MODULUS_BITS[n]} modulus bits); use a larger ckks.poly_degree, a smaller "
        "ckks.scale_bits or ckks.refresh_every, or lower polynomial degrees")


def _with_refresh_interval(cell: str, polys: Mapping[str, poly.Poly], seq_len: int,
                           refresh_every: int | str, setup: Setup) -> Setup:
    """``setup`` refreshing every ``refresh_every`` steps, or (automatic) as rarely as its levels allow."""
    if refresh_every == "auto":
        refresh_every = 1
        while refresh_every < seq_len and levels_needed(cell, polys, refresh_every + 1) <= setup.levels:
            refresh_every += 1
    return replace(setup, refresh_every=refresh_every)


def _as_int(params: dict[str, Any], key: str, low: int, high: int) -> None:
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParams(f"ckks.{key} must be an integer in [{low}, {high}], got {value!r}")


def validate(given: Mapping[str, Any]) -> dict[str, Any]:
    """Fill defaults and check every setting that does not depend on the cell."""
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise InvalidParams(f"unknown ckks parameter(s) {', '.join(unknown)}; "
                            f"valid: {', '.join(DEFAULTS)}")
    params = {**DEFAULTS, **given}
    if params["packing"] not in PACKINGS:
        raise InvalidParams(f"ckks.packing must be one of {', '.join(PACKINGS)}, got {params['packing']!r}")
    if params["poly_degree"] != "auto" and params["poly_degree"] not in MAX_MODULUS_BITS:
        raise InvalidParams(f"ckks.poly_degree must be auto or one of "
                            f"{', '.join(map(str, MAX_MODULUS_BITS))}, got {params['poly_degree']!r}")
    if params["scale_bits"] != "auto":
        _as_int(params, "scale_bits", 20, MAX_PRIME_BITS - HEADROOM_BITS)
    if "auto" not in (params["poly_degree"], params["scale_bits"]) and max_levels(
            params["poly_degree"], params["scale_bits"]) < 1:
        n, bits = params["poly_degree"], params["scale_bits"]
        raise InvalidParams(
            f"ckks: poly_degree={n} with scale_bits={bits} is insecure or unusable: even one level needs "
            f"{2 * edge_bits(bits) + bits} modulus bits, 128-bit security allows {MAX_MODULUS_BITS[n]}")
    if params["refresh_every"] != "auto":
        _as_int(params, "refresh_every", 1, 10**6)
    for kind in poly.KINDS:
        if params[f"{kind}_degree"] != "auto":
            _as_int(params, f"{kind}_degree", 2, poly.MAX_DEGREE)
    if not (isinstance(params["poly_err"], int | float) and 0 < params["poly_err"] < 1):
        raise InvalidParams(f"ckks.poly_err must be a number in (0, 1), got {params['poly_err']!r}")
    if params["relu"] not in RELU_FORMS:
        raise InvalidParams(f"ckks.relu must be one of {', '.join(RELU_FORMS)}, got {params['relu']!r}")
    if params["interval"] != "auto" and not (
            isinstance(params["interval"], int | float) and 0 < params["interval"] < math.inf):
        raise InvalidParams(
            f"ckks.interval must be auto or a finite positive half-width, got {params['interval']!r}")
    if not (isinstance(params["margin"], int | float) and 1 <= params["margin"] < math.inf):
        raise InvalidParams(f"ckks.margin must be a finite number >= 1, got {params['margin']!r}")
    return params
