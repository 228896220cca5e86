"""The integer cells in plain NumPy, written for clarity: the specification the kernels must match.

The elementwise part of a step is the cell's own step function from
:mod:`rnnbench.cells.equations`, run on :class:`~rnnbench.backends.integer.fixed.Fixed`
values; only the matrix products, their rescaling and the storing of the state are
written out here. Every value is an int64 array holding an integer of the width the
scheme gives it (see :mod:`rnnbench.backends.integer.quantize`).
"""

from __future__ import annotations

import numpy as np

from rnnbench.backends.integer.fixed import Fixed, IntegerOps, saturate, shift_round
from rnnbench.backends.integer.quantize import Projection, QuantizedCell, quantize_inputs
from rnnbench.cells.equations import GATES, unroll


def project(proj: Projection, v: np.ndarray, bound: int) -> tuple[np.ndarray, int]:
    """Pre-activations ``W v + b`` of vectors ``v`` [..., K] saturated to ``bound``, and how many were."""
    acc = v.astype(np.int64) @ proj.weight.T.astype(np.int64) + proj.bias
    pre = shift_round(acc * proj.multiplier, proj.shift)
    return saturate(pre, bound), int(np.count_nonzero(np.abs(pre) > bound))


def run_reference(q: QuantizedCell, x: np.ndarray) -> tuple[np.ndarray, int]:
    """Run sequences ``x`` [T, B, I] float from a zero state.

    Returns the hidden states [T, B, H] as integers with ``q.frac_h`` fractional bits and
    the number of values saturated on the way (inputs, pre-activations, cell state).
    """
    batch, gates = x.shape[1], GATES[q.cell]
    xq, saturated = quantize_inputs(x, q.frac_x, q.bits)
    gi_all, clipped = project(q.input_proj, xq, q.elementwise_max)
    counts = [saturated + clipped]

    def recurrent(h: Fixed) -> np.ndarray:
        gh, clipped = project(q.recurrent_proj, h.q, q.elementwise_max)
        counts.append(clipped)
        return gh

    def split(v: np.ndarray) -> tuple[Fixed, ...]:
        return tuple(Fixed(part, q.frac_pre) for part in np.split(v, gates, -1))

    def store_h(h_new: Fixed) -> Fixed:
        # h is in [-1, 1] by construction: storing it clamps at most the one step of +-1.
        return Fixed(saturate(h_new.to(q.frac_h), q.qmax), q.frac_h)

    def store(state):
        if q.cell != "lstm":
            return store_h(state)
        h_new, c_new = state
        c_q = c_new.to(q.frac_c)
        counts.append(int(np.count_nonzero(np.abs(c_q) > q.elementwise_max)))
        return store_h(h_new), Fixed(saturate(c_q, q.elementwise_max), q.frac_c)

    h = Fixed(np.zeros((batch, q.hidden_size)), q.frac_h)
    state = (h, Fixed(np.zeros((batch, q.hidden_size)), q.frac_c)) if q.cell == "lstm" else h
    outputs, _ = unroll(q.cell, IntegerOps, gi_all, recurrent, state, split, store)
    return np.stack([h.q for h in outputs]).astype(np.int64), sum(counts)
