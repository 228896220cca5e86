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
from rnnbench.cells.equations import GATES
from rnnbench.cells.reference import STEPS


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
    seq_len, batch, _ = x.shape
    gates, lstm = GATES[q.cell], q.cell == "lstm"
    xq, saturated = quantize_inputs(x, q.frac_x, q.bits)
    gi_all, clipped = project(q.input_proj, xq, q.elementwise_max)
    saturated += clipped
    h = Fixed(np.zeros((batch, q.hidden_size)), q.frac_h)
    c = Fixed(np.zeros((batch, q.hidden_size)), q.frac_c)
    out = np.empty((seq_len, batch, q.hidden_size), np.int64)
    for t in range(seq_len):
        gh, clipped = project(q.recurrent_proj, h.q, q.elementwise_max)
        saturated += clipped
        gi = tuple(Fixed(v, q.frac_pre) for v in np.split(gi_all[t], gates, -1))
        gh = tuple(Fixed(v, q.frac_pre) for v in np.split(gh, gates, -1))
        if lstm:
            h_new, c_new = STEPS[q.cell](IntegerOps, gi, gh, (h, c))
            c_q = c_new.to(q.frac_c)
            saturated += int(np.count_nonzero(np.abs(c_q) > q.elementwise_max))
            c = Fixed(saturate(c_q, q.elementwise_max), q.frac_c)
        else:
            h_new = STEPS[q.cell](IntegerOps, gi, gh, h)
        # h is in [-1, 1] by construction: storing it clamps at most the one step of +-1.
        h = Fixed(saturate(h_new.to(q.frac_h), q.qmax), q.frac_h)
        out[t] = h.q
    return out, saturated
