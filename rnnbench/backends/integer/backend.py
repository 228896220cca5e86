"""``int8`` / ``int16``: the cells in integer arithmetic, compiled with numba.

One class, two registered instances: the bit width is the width of the weights, the
inputs and the hidden state (see :mod:`rnnbench.backends.integer.quantize` for the
whole scheme). ``prepare`` quantizes the weights and calibrates the fixed-point
scales on the calibration inputs; ``run`` quantizes the inputs, runs the compiled
kernel and returns the hidden states dequantized to float, so the runner measures
the error against the float reference like for any backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnnbench.backends.base import Backend, Prepared
from rnnbench.backends.integer.kernels import CELL_CODES, run_sequences
from rnnbench.backends.integer.quantize import QuantizedCell, check_bits, quantize
from rnnbench.backends.integer.vnni import pad_for_vnni
from rnnbench.cells import Weights
from rnnbench.cells.costs import integer_step_cost

# More than this fraction of quantized values saturated means the calibration range is too narrow.
SATURATION_WARNING = 0.01


class IntegerPrepared(Prepared):
    def __init__(self, quantized: QuantizedCell) -> None:
        self.q = quantized
        self.w_padded, self.offset = pad_for_vnni(
            quantized.recurrent_proj.weight if quantized.bits == 8 else np.zeros((0, 0), np.int8))
        self.saturated = 0
        self.quantized_values = 0

    def run_integers(self, x: np.ndarray) -> np.ndarray:
        """Hidden states [T, B, H] as integers at ``frac_h`` fractional bits; counts saturation."""
        q = self.q
        inp, rec = q.input_proj, q.recurrent_proj
        out, saturated = run_sequences(
            CELL_CODES[q.cell], np.ascontiguousarray(x, np.float32), 2.0**q.frac_x,
            inp.weight_t, inp.bias, inp.multiplier, inp.shift,
            rec.weight, rec.bias, rec.multiplier, rec.shift, q.frac_pre, q.frac_h, q.frac_c,
            np.empty(max(rec.weight.shape[0], len(self.offset)), q.accumulator),
            np.empty(rec.weight.shape[0], q.elementwise), self.w_padded, self.offset,
        )
        seq_len, batch, inputs = x.shape
        rows = rec.weight.shape[0]
        per_step = inputs + 2 * rows + (q.hidden_size if q.cell == "lstm" else 0)
        self.saturated = saturated
        self.quantized_values = seq_len * batch * per_step
        return out

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.run_integers(x).astype(np.float32) * np.float32(2.0**-self.q.frac_h)

    @property
    def saturation_rate(self) -> float:
        """Fraction of the last run's quantized values (inputs, pre-activations, cell state) clipped."""
        return self.saturated / self.quantized_values if self.quantized_values else 0.0

    def facts(self) -> dict[str, Any]:
        q = self.q
        facts: dict[str, Any] = {
            "saturation_rate": self.saturation_rate,
            "calibration_size": q.calibration_size,
            **integer_step_cost(q.cell, q.input_proj.weight.shape[1], q.hidden_size, q.bits),
        }
        if self.saturation_rate > SATURATION_WARNING:
            facts["error_message"] = (
                f"warning: {self.saturation_rate:.1%} of quantized values saturated "
                f"(more than {SATURATION_WARNING:.0%}): the calibration range is too narrow")
        return facts


class IntegerBackend(Backend):
    """The integer-quantized cells at one bit width (8 or 16)."""

    def __init__(self, bits: int) -> None:
        self.bits = check_bits(bits)
        self.name = f"int{bits}"
        self.description = (f"{bits}-bit integer weights, inputs and state; fixed-point scales "
                            "calibrated on the inputs; compiled with numba")

    def prepare(
        self,
        weights: Weights,
        params: Mapping[str, Any],
        calibration: np.ndarray,
        threads: int = 1,
    ) -> IntegerPrepared:
        prepared = IntegerPrepared(quantize(weights, self.bits, calibration))
        prepared.run(calibration[:1, :1])  # compile (or load from numba's cache) outside the timing
        return prepared


INT8 = IntegerBackend(8)
INT16 = IntegerBackend(16)
