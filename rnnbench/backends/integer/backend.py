"""``int8`` / ``int16``: the cells in integer arithmetic, compiled with numba.

One class, two registered instances: the bit width is the width of the weights, the
inputs and the hidden state (see :mod:`rnnbench.backends.integer.quantize` for the
whole scheme). ``prepare`` quantizes the weights and calibrates the fixed-point
scales on the calibration inputs; ``run`` quantizes the inputs, runs the compiled
kernel and returns the hidden states dequantized to float, so the runner measures
the error against the float reference like for any backend.

On ``threads`` > 1 the batch is split into that many slices, each run by the compiled
kernel on its own thread (the kernel releases the GIL; the sequences of a batch are
independent, so the result is bit-identical). Plain Python threads rather than numba's
parallel layer, whose OpenMP runtime resets the thread count torch set
(:func:`rnnbench.measure.set_threads`). One sequence runs on one thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
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
    def __init__(self, quantized: QuantizedCell, threads: int = 1) -> None:
        self.q = quantized
        self.threads = threads
        # The calling thread runs the first slice of a batch, the pool the others.
        self.pool = ThreadPoolExecutor(threads - 1, "rnnbench-int") if threads > 1 else None
        self.w_padded, self.offset = pad_for_vnni(
            quantized.recurrent_proj.weight if quantized.bits == 8 else np.zeros((0, 0), np.int8))
        self.saturated = 0
        self.quantized_values = 0

    def _run_slice(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """The compiled kernel on sequences ``x`` [T, b, I] (C-contiguous), with its own scratch."""
        q = self.q
        inp, rec = q.input_proj, q.recurrent_proj
        return run_sequences(
            CELL_CODES[q.cell], x, 2.0**q.frac_x,
            inp.weight_t, inp.bias, inp.multiplier, inp.shift,
            rec.weight, rec.bias, rec.multiplier, rec.shift, q.frac_pre, q.frac_h, q.frac_c,
            np.empty((x.shape[1], max(rec.weight.shape[0], len(self.offset))), q.accumulator),
            np.empty(rec.weight.shape[0], q.elementwise), self.w_padded, self.offset,
        )

    def run_integers(self, x: np.ndarray) -> np.ndarray:
        """Hidden states [T, B, H] as integers at ``frac_h`` fractional bits; counts saturation."""
        q, rec = self.q, self.q.recurrent_proj
        seq_len, batch, inputs = x.shape
        slices = np.array_split(np.arange(batch), min(self.threads, batch))
        if len(slices) == 1:
            out, saturated = self._run_slice(np.ascontiguousarray(x, np.float32))
        else:
            parts = [np.ascontiguousarray(x[:, s[0]:s[-1] + 1], np.float32) for s in slices]
            others = [self.pool.submit(self._run_slice, part) for part in parts[1:]]
            results = [self._run_slice(parts[0])] + [f.result() for f in others]
            out = np.concatenate([r[0] for r in results], axis=1)
            saturated = sum(r[1] for r in results)
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
        prepared = IntegerPrepared(quantize(weights, self.bits, calibration), threads)
        prepared.run(calibration[:1, :1])  # compile (or load from numba's cache) outside the timing
        return prepared


INT8 = IntegerBackend(8)
INT16 = IntegerBackend(16)
