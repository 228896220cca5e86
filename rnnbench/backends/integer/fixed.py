"""Fixed-point primitives shared by the NumPy reference and the compiled kernels.

A fixed-point value is an integer ``q`` with a number of fractional bits ``frac``:
its real value is ``q * 2**-frac`` (a power-of-two scale). The helpers here are plain
Python written so that the same source runs on NumPy int64 arrays (the reference)
and, compiled by numba, on scalars (the kernels): one definition of rounding,
saturation and table lookup, so the two implementations cannot drift apart.

Rounding is "round half up": ``(v + 2**(s-1)) >> s`` with an arithmetic shift.

sigmoid and tanh are int16 lookup tables with linear interpolation, in the spirit of
TFLite's int16 activation tables: the input is first brought to Q4.11 (int16 covering
[-16, 16), where both functions are flat to within one Q0.15 step), the top 12 bits
pick one of 4096 segments and the low 4 bits interpolate between its end points. The
output is Q0.15 (int16, 1.0 saturated to 32767).
"""

from __future__ import annotations

import numpy as np
from numba import njit

INT16_MAX = 32767
GATE_FRAC = 15  # Q0.15: gates and activation outputs
LUT_INPUT_FRAC = 11  # Q4.11: the tables' input
_LUT_SEGMENT_BITS = 4  # low bits of the Q4.11 input used to interpolate
_LUT_ENTRIES = (1 << (16 - _LUT_SEGMENT_BITS)) + 1


def shift_round(v, s):
    """``v * 2**-s`` rounded half up (``s > 0``), or the exact ``v * 2**-s`` for ``s <= 0``."""
    if s > 0:
        return (v + (1 << (s - 1))) >> s
    return v << -s


def saturate(v, bound):
    """Clamp ``v`` to ``[-bound, bound]`` (symmetric, as the quantized weights are)."""
    return np.minimum(np.maximum(v, -bound), bound)


def lut_lookup(table, v):
    """Interpolated table value (Q0.15) at ``v`` in Q4.11, saturated to the table's input range."""
    u = np.minimum(np.maximum(v, -32768), 32767) + 32768
    i = u >> _LUT_SEGMENT_BITS
    lo = table[i]
    step = (table[i + 1] - lo) * (u & ((1 << _LUT_SEGMENT_BITS) - 1))
    return lo + ((step + (1 << (_LUT_SEGMENT_BITS - 1))) >> _LUT_SEGMENT_BITS)


def _table(function) -> np.ndarray:
    """``function`` sampled at the segment end points of the Q4.11 input range, as Q0.15 int32."""
    x = (np.arange(_LUT_ENTRIES) * (1 << _LUT_SEGMENT_BITS) - 32768) / 2.0**LUT_INPUT_FRAC
    return saturate(np.round(function(x) * 2.0**GATE_FRAC), INT16_MAX).astype(np.int32)


# int16 values, held as int32 so NumPy differences of neighbours never wrap.
SIGMOID_TABLE = _table(lambda x: 1.0 / (1.0 + np.exp(-x)))
TANH_TABLE = _table(np.tanh)

# Compiled twins of the helpers above (same source), for the kernels.
shift_round_jit = njit(cache=True)(shift_round)
saturate_jit = njit(cache=True)(saturate)
lut_lookup_jit = njit(cache=True)(lut_lookup)


class Fixed:
    """A fixed-point array for the reference: ``q`` (int64) scaled by ``2**-frac``.

    Its arithmetic is what lets :mod:`rnnbench.cells.equations` run unchanged on
    integers, and it fixes the one rule the kernels follow: an addition aligns its
    operands to the coarser of their scales, a product of two values keeps the coarser
    scale (``q_a * q_b`` shifted right, rounding, by the finer one's fractional bits),
    and the integer constants of the equations (the 1 of ``1 - z``, clip's bounds) take
    the scale of the value they meet.
    """

    __slots__ = ("q", "frac")

    def __init__(self, q: np.ndarray, frac: int) -> None:
        self.q = np.asarray(q, dtype=np.int64)
        self.frac = frac

    def to(self, frac: int) -> np.ndarray:
        """The integers of this value at ``frac`` fractional bits (rounded when coarser)."""
        return shift_round(self.q, self.frac - frac)

    def _pair(self, other: Fixed | int) -> tuple[np.ndarray, np.ndarray, int]:
        if isinstance(other, Fixed):
            frac = min(self.frac, other.frac)
            return self.to(frac), other.to(frac), frac
        return self.q, np.int64(other) << self.frac, self.frac

    def __add__(self, other: Fixed | int) -> Fixed:
        a, b, frac = self._pair(other)
        return Fixed(a + b, frac)

    __radd__ = __add__

    def __sub__(self, other: Fixed | int) -> Fixed:
        a, b, frac = self._pair(other)
        return Fixed(a - b, frac)

    def __rsub__(self, other: int) -> Fixed:
        a, b, frac = self._pair(other)
        return Fixed(b - a, frac)

    def __neg__(self) -> Fixed:
        return Fixed(-self.q, self.frac)

    def __mul__(self, other: Fixed) -> Fixed:
        frac = min(self.frac, other.frac)
        return Fixed(shift_round(self.q * other.q, self.frac + other.frac - frac), frac)

    def __repr__(self) -> str:
        return f"Fixed(frac={self.frac}, q={self.q!r})"


class IntegerOps:
    """The ``ops`` namespace of :mod:`rnnbench.cells.equations` for :class:`Fixed` values."""

    @staticmethod
    def sigmoid(v: Fixed) -> Fixed:
        return Fixed(lut_lookup(SIGMOID_TABLE, v.to(LUT_INPUT_FRAC)), GATE_FRAC)

    @staticmethod
    def tanh(v: Fixed) -> Fixed:
        return Fixed(lut_lookup(TANH_TABLE, v.to(LUT_INPUT_FRAC)), GATE_FRAC)

    @staticmethod
    def relu(v: Fixed) -> Fixed:
        return Fixed(np.maximum(v.q, 0), v.frac)
