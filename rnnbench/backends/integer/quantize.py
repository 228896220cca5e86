"""Quantization of a cell's weights and calibration of its fixed-point scales.

The scheme (the same for both widths; ``bits`` is 8 or 16):

- weights: per output row, symmetric, to ``bits``-bit integers (``[-qmax, qmax]``);
- inputs ``x``: ``bits``-bit fixed point, fractional bits chosen by calibration;
- hidden state ``h``: ``bits``-bit fixed point with ``bits - 1`` fractional bits, since
  every cell keeps ``h`` in [-1, 1] by construction;
- matrix products: exact integer accumulation, int32 for 8 bits and int64 for 16 bits
  (int16 x int16 products reach 2**30, so two of them can already overflow int32);
- gate pre-activations ``W x + b`` and ``W h + b``: rescaled from the accumulator to the
  elementwise width (int16 for 8 bits, int32 for 16 bits) with a calibrated number of
  fractional bits, by a per-row integer multiplier and a rounding right shift, then
  saturated; the bias is added in the accumulator, at its scale;
- the elementwise part of a step runs at that width too; sigmoid and tanh are int16
  tables with Q0.15 outputs (see :mod:`.fixed`); LSTM's cell state ``c`` is stored at the
  elementwise width with a calibrated number of fractional bits.

Calibration runs the float cell over the calibration inputs and picks the finest
power-of-two scales under which the observed ranges fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnnbench.backends.base import InvalidParams, Unsupported
from rnnbench.backends.integer.fixed import GATE_FRAC
from rnnbench.cells import Weights
from rnnbench.cells.weights import run_numpy

SUPPORTED_BITS = (8, 16)
_ACCUMULATOR = {8: np.int32, 16: np.int64}
# Pre-activations, elementwise arithmetic and the LSTM cell state: twice the weights' width.
_ELEMENTWISE = {8: np.int16, 16: np.int32}
# The rescaling product (accumulator + bias) * multiplier is formed in int64.
_PRODUCT_LIMIT = 2**62
# Headroom for the +-1 constants reluadd adds to its pre-activations (clip).
_PRE_HEADROOM = 2.0


def check_bits(bits: int) -> int:
    """``bits`` if it is a supported width; otherwise a one-line :class:`InvalidParams`."""
    if bits not in SUPPORTED_BITS:
        raise InvalidParams(f"unsupported integer bit width {bits!r}; "
                            f"supported: {', '.join(map(str, SUPPORTED_BITS))}")
    return bits


@dataclass(frozen=True)
class Projection:
    """One quantized matrix product with its bias and its rescaling to the pre-activation scale.

    ``pre = saturate(shift_round((W v + bias) * multiplier, shift), 32767)``, per row.
    """

    weight: np.ndarray  # [rows, K] int8 / int16
    weight_t: np.ndarray  # the same, transposed and contiguous [K, rows], for the kernels
    bias: np.ndarray  # [rows] int32 / int64, at the accumulator's scale
    multiplier: np.ndarray  # [rows] int64
    shift: int


@dataclass(frozen=True)
class QuantizedCell:
    """Everything the integer reference and kernels need to run one cell."""

    cell: str
    bits: int
    input_proj: Projection
    recurrent_proj: Projection
    frac_x: int  # fractional bits of the inputs
    frac_pre: int  # of the gate pre-activations
    frac_c: int  # of the LSTM cell state
    calibration_size: int  # input vectors (steps x sequences) the scales were chosen on

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1

    @property
    def frac_h(self) -> int:
        return self.bits - 1

    @property
    def hidden_size(self) -> int:
        return self.recurrent_proj.weight.shape[1]

    @property
    def accumulator(self) -> type:
        return _ACCUMULATOR[self.bits]

    @property
    def elementwise(self) -> type:
        return _ELEMENTWISE[self.bits]

    @property
    def elementwise_max(self) -> int:
        """Saturation bound of pre-activations and cell state."""
        return int(np.iinfo(self.elementwise).max)


def finest_frac(max_abs: float, limit: int, lowest: int = 0, highest: int = 30) -> int:
    """Most fractional bits ``f`` with ``max_abs * 2**f <= limit`` (clamped to [lowest, highest])."""
    if max_abs <= 0:
        return highest
    return int(min(max(math.floor(math.log2(limit / max_abs)), lowest), highest))


def quantize_rows(w: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row quantization: integers and the float scale of each row."""
    qmax = (1 << (bits - 1)) - 1
    scale = np.abs(w).max(axis=1).astype(np.float64) / qmax
    scale[scale == 0] = 1.0  # an all-zero row: any scale represents it exactly
    q = np.rint(w / scale[:, None]).astype(np.int8 if bits == 8 else np.int16)
    return q, scale


def quantize_inputs(x: np.ndarray, frac: int, bits: int) -> tuple[np.ndarray, int]:
    """Inputs as ``bits``-bit fixed point with ``frac`` fractional bits, and how many saturated."""
    qmax = (1 << (bits - 1)) - 1
    scaled = np.floor(np.asarray(x, np.float32).astype(np.float64) * 2.0**frac + 0.5)
    clipped = int(np.count_nonzero(np.abs(scaled) > qmax))
    return np.clip(scaled, -qmax, qmax).astype(np.int8 if bits == 8 else np.int16), clipped


def _projection(w: np.ndarray, b: np.ndarray, bits: int, frac_in: int, frac_pre: int) -> Projection:
    q, scale = quantize_rows(w, bits)
    unit = scale * 2.0**-frac_in  # the real value of one accumulator step, per row
    bias = np.rint(b / unit)
    qmax = (1 << (bits - 1)) - 1
    # The largest accumulator a row can reach, whatever its (saturated) input.
    bound = np.abs(q).astype(np.float64).sum(axis=1) * qmax + np.abs(bias)
    if bits == 8 and bound.max() >= 2**31:
        raise Unsupported(f"int8 accumulators could overflow int32 at these sizes (bound {bound.max():.3g})")
    real_multiplier = unit * 2.0**frac_pre
    worst = float((bound * real_multiplier).max())
    shift = min(62, math.floor(math.log2(_PRODUCT_LIMIT / 2 / max(worst, 1e-300))))
    multiplier = np.rint(real_multiplier * 2.0**shift).astype(np.int64)
    if float((bound * np.abs(multiplier)).max()) >= _PRODUCT_LIMIT or multiplier.max() < 2**10:
        raise Unsupported(f"int{bits} rescaling cannot be done exactly in int64 at these sizes")
    return Projection(q, np.ascontiguousarray(q.T), bias.astype(_ACCUMULATOR[bits]), multiplier, shift)


def float_ranges(weights: Weights, x: np.ndarray) -> tuple[float, float]:
    """Largest ``|W_ih x + b_ih| + |W_hh h + b_hh|`` bound and ``|c|`` of the float cell on ``x``."""
    peak_c = [0.0]

    def observe(state):
        if weights.cell == "lstm":
            peak_c[0] = max(peak_c[0], float(np.abs(state[1]).max()))
        return state

    outputs = run_numpy(weights, x, store=observe)
    # Each step's pre-activations: the input projection plus the recurrent one of the previous h.
    previous = np.concatenate([np.zeros_like(outputs[:1]), outputs[:-1]])
    gi = x.astype(np.float64) @ weights.weight_ih.T.astype(np.float64) + weights.bias_ih
    gh = previous @ weights.weight_hh.T.astype(np.float64) + weights.bias_hh
    return float(np.abs(gi).max()) + float(np.abs(gh).max()), peak_c[0]


def quantize(weights: Weights, bits: int, calibration: np.ndarray) -> QuantizedCell:
    """Quantize ``weights`` to ``bits`` bits with scales calibrated on inputs ``calibration`` [T, B, I]."""
    check_bits(bits)
    qmax = (1 << (bits - 1)) - 1
    calibration = np.asarray(calibration, np.float32)
    frac_x = finest_frac(float(np.abs(calibration).max(initial=0.0)), qmax, lowest=-8, highest=bits + 8)
    max_pre, max_c = float_ranges(weights, calibration)
    limit = int(np.iinfo(_ELEMENTWISE[bits]).max)
    # The pre-activations of all gates share one scale, so reluadd adds them without rescaling.
    frac_pre = finest_frac(max_pre + _PRE_HEADROOM, limit)
    # c only meets Q0.15 gates in products, which keep the coarser scale: more bits would be lost.
    frac_c = finest_frac(max_c, limit, highest=GATE_FRAC)
    return QuantizedCell(
        cell=weights.cell,
        bits=bits,
        input_proj=_projection(weights.weight_ih, weights.bias_ih, bits, frac_x, frac_pre),
        recurrent_proj=_projection(weights.weight_hh, weights.bias_hh, bits, bits - 1, frac_pre),
        frac_x=frac_x,
        frac_pre=frac_pre,
        frac_c=frac_c,
        calibration_size=calibration.shape[0] * calibration.shape[1],
    )
