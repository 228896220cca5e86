"""Compiled integer kernels: one numba call runs a whole batch of sequences.

They compute exactly what :mod:`rnnbench.backends.integer.reference` computes (tests
prove the outputs bit-identical), written as flat loops over contiguous integer arrays
so LLVM vectorises them: the matrix products as per-row dot products of int8/int16
vectors (``vpmaddwd`` for int8 into int32 accumulators), the rescaling and the
elementwise updates as loops over the hidden units. Each elementwise update below
follows its equation in :mod:`rnnbench.cells.equations` operation by operation, with
the scale rule of :class:`~rnnbench.backends.integer.fixed.Fixed` made explicit:
``_align(q, f_from, f_to)`` is :meth:`Fixed.to`, and a product of a Q0.15 gate with
a value of ``f <= 15`` fractional bits is shifted right, rounding, by 15.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from rnnbench.backends.integer.fixed import (
    GATE_FRAC,
    INT16_MAX,
    LUT_INPUT_FRAC,
    SIGMOID_TABLE,
    TANH_TABLE,
    lut_lookup_jit,
    saturate_jit,
    shift_round_jit,
)

GRU, LSTM, RELUADD = 0, 1, 2
CELL_CODES = {"gru": GRU, "lstm": LSTM, "reluadd": RELUADD}
_ONE_GATE = 1 << GATE_FRAC


@njit(inline="always", cache=True)
def _align(q, frac_from, frac_to):
    return shift_round_jit(q, frac_from - frac_to)


@njit(inline="always", cache=True)
def _sigmoid(q, frac):
    return lut_lookup_jit(SIGMOID_TABLE, _align(q, frac, LUT_INPUT_FRAC))


@njit(inline="always", cache=True)
def _tanh(q, frac):
    return lut_lookup_jit(TANH_TABLE, _align(q, frac, LUT_INPUT_FRAC))


@njit(inline="always", cache=True)
def _relu(q):
    return max(q, 0)


@njit(inline="always", cache=True)
def _project(weight, bias, multiplier, shift, v, acc, pre):
    """``pre = saturate(shift_round((W v + bias) * multiplier, shift))``; returns how many saturated."""
    rows, k_len = weight.shape
    for r in range(rows):
        s = 0
        for k in range(k_len):
            s += weight[r, k] * v[k]
        acc[r] = s  # int32 or int64: the accumulator's width, no overflow by construction
    saturated = 0
    for r in range(rows):
        p = shift_round_jit(np.int64(acc[r] + bias[r]) * multiplier[r], shift)
        clipped = saturate_jit(p, INT16_MAX)
        saturated += clipped != p
        pre[r] = clipped
    return saturated


@njit(inline="always", cache=True)
def _quantize_inputs(x, scale, qmax, xq):
    """``xq = saturate(floor(x * scale + 0.5))`` like ``quantize_inputs``; returns how many saturated."""
    saturated = 0
    for k in range(x.shape[0]):
        v = np.floor(np.float64(x[k]) * scale + 0.5)
        clipped = min(max(v, -qmax), qmax)
        saturated += clipped != v
        xq[k] = np.int64(clipped)
    return saturated


@njit(inline="always", cache=True)
def _gru_units(gi, gh, h, hidden, frac_pre, frac_h, qmax):
    for j in range(hidden):
        r = _sigmoid(np.int64(gi[j]) + gh[j], frac_pre)
        z = _sigmoid(np.int64(gi[hidden + j]) + gh[hidden + j], frac_pre)
        rg = shift_round_jit(r * np.int64(gh[2 * hidden + j]), GATE_FRAC)  # r * gh_n at frac_pre
        n = _tanh(gi[2 * hidden + j] + rg, frac_pre)
        keep = shift_round_jit((_ONE_GATE - z) * n, GATE_FRAC)  # (1 - z) * n, Q0.15
        mix = shift_round_jit(z * np.int64(h[j]), GATE_FRAC)  # z * h at frac_h
        h[j] = saturate_jit(_align(keep, GATE_FRAC, frac_h) + mix, qmax)


@njit(inline="always", cache=True)
def _lstm_units(gi, gh, h, c, hidden, frac_pre, frac_h, frac_c, qmax):
    saturated = 0
    for j in range(hidden):
        i = _sigmoid(np.int64(gi[j]) + gh[j], frac_pre)
        f = _sigmoid(np.int64(gi[hidden + j]) + gh[hidden + j], frac_pre)
        g = _tanh(np.int64(gi[2 * hidden + j]) + gh[2 * hidden + j], frac_pre)
        o = _sigmoid(np.int64(gi[3 * hidden + j]) + gh[3 * hidden + j], frac_pre)
        fc = shift_round_jit(f * np.int64(c[j]), GATE_FRAC)  # frac_c
        ig = shift_round_jit(i * g, GATE_FRAC)  # Q0.15
        c_new = fc + _align(ig, GATE_FRAC, frac_c)
        h_new = shift_round_jit(o * _tanh(c_new, frac_c), GATE_FRAC)  # Q0.15
        h[j] = saturate_jit(_align(h_new, GATE_FRAC, frac_h), qmax)
        stored = saturate_jit(c_new, INT16_MAX)
        saturated += stored != c_new
        c[j] = stored
    return saturated


@njit(inline="always", cache=True)
def _inh(v, frac_v, s, frac_s):
    """``inh(v, s) = relu(v - relu(-s)) - relu(-v - relu(-s))`` at the coarser of the two scales."""
    frac = min(frac_v, frac_s)
    a = _align(_relu(-s), frac_s, frac)
    return _relu(_align(v, frac_v, frac) - a) - _relu(_align(-v, frac_v, frac) - a), frac


@njit(inline="always", cache=True)
def _clip(u, frac):
    one = np.int64(1) << frac
    return _relu(u + one) - _relu(u - one) - one


@njit(inline="always", cache=True)
def _reluadd_units(gi, gh, h, hidden, frac_pre, frac_h, qmax):
    for j in range(hidden):
        s_r = np.int64(gi[j]) + gh[j]
        s_z = np.int64(gi[hidden + j]) + gh[hidden + j]
        inh_n, _ = _inh(np.int64(gh[2 * hidden + j]), frac_pre, s_r, frac_pre)
        n = _clip(gi[2 * hidden + j] + inh_n, frac_pre)
        keep, frac_keep = _inh(np.int64(h[j]), frac_h, s_z, frac_pre)
        take, _ = _inh(n, frac_pre, -s_z, frac_pre)
        frac = min(frac_keep, frac_pre)
        u = _clip(_align(keep, frac_keep, frac) + _align(take, frac_pre, frac), frac)
        h[j] = saturate_jit(_align(u, frac, frac_h), qmax)


@njit(cache=True)
def run_sequences(cell, x, x_scale, w_ih, b_ih, m_ih, shift_ih, w_hh, b_hh, m_hh, shift_hh,
                  frac_pre, frac_h, frac_c, acc):
    """Run float inputs ``x`` [T, B, I], quantized with ``x_scale = 2**frac_x``, from a zero state.

    Returns ``(outputs [T, B, H]`` at ``frac_h`` fractional bits, ``values saturated)``;
    ``acc`` is scratch of the accumulator's type (int32 or int64), one entry per row.
    """
    seq_len, batch, inputs = x.shape
    rows, hidden = w_hh.shape
    qmax = (1 << (w_hh.itemsize * 8 - 1)) - 1
    xq = np.empty(inputs, w_ih.dtype)
    gi = np.empty((seq_len, batch, rows), np.int16)
    gh = np.empty(rows, np.int16)
    h = np.zeros((batch, hidden), w_hh.dtype)
    c = np.zeros((batch, hidden), np.int16)
    out = np.empty((seq_len, batch, hidden), w_hh.dtype)
    saturated = 0
    for t in range(seq_len):  # the input projection for every step, ahead of the recurrence
        for b in range(batch):
            saturated += _quantize_inputs(x[t, b], x_scale, qmax, xq)
            saturated += _project(w_ih, b_ih, m_ih, shift_ih, xq, acc, gi[t, b])
    for t in range(seq_len):
        for b in range(batch):
            saturated += _project(w_hh, b_hh, m_hh, shift_hh, h[b], acc, gh)
            if cell == GRU:
                _gru_units(gi[t, b], gh, h[b], hidden, frac_pre, frac_h, qmax)
            elif cell == LSTM:
                saturated += _lstm_units(gi[t, b], gh, h[b], c[b], hidden, frac_pre, frac_h, frac_c, qmax)
            else:
                _reluadd_units(gi[t, b], gh, h[b], hidden, frac_pre, frac_h, qmax)
        out[t] = h
    return out, saturated
