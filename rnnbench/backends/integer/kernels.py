"""Compiled integer kernels: one numba call runs a whole batch of sequences.

They compute exactly what :mod:`rnnbench.backends.integer.reference` computes (tests
prove the outputs bit-identical), written as flat loops over contiguous integer arrays
so LLVM vectorises them: the recurrent product as one dot product per row and sequence,
each row (block of rows) serving every sequence of the batch before the next is loaded
(int8 runs on AVX-512 VNNI's ``vpdpbusd`` where the CPU has it, see :mod:`.vnni`; otherwise
LLVM makes ``vpmaddwd``/``vpdpwssd`` of it), the input product (short rows) as a sum of the rows of
the transposed weights, the rescaling and the elementwise updates as loops over the
hidden units.

Each elementwise update transcribes its equation in :mod:`rnnbench.cells.equations`
operation by operation on ``(integer, fractional bits)`` pairs, with ``_add``, ``_sub``
and ``_mul`` applying the scale rule of :class:`~rnnbench.backends.integer.fixed.Fixed`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from rnnbench.backends import simd  # noqa: F401  (before any compilation)
from rnnbench.backends.integer.fixed import (
    GATE_FRAC,
    LUT_INPUT_FRAC,
    SIGMOID_TABLE,
    TANH_TABLE,
    lut_lookup_jit,
    saturate_jit,
    shift_round_jit,
)
from rnnbench.backends.integer.vnni import HAS_VNNI, dot_rows_u8s8

GRU, LSTM, RELUADD = 0, 1, 2
CELL_CODES = {"gru": GRU, "lstm": LSTM, "reluadd": RELUADD}


@njit(cache=True)
def _align(q, frac_from, frac_to):
    """:meth:`Fixed.to`."""
    return shift_round_jit(q, frac_from - frac_to)


@njit(cache=True)
def _add(a, frac_a, b, frac_b):
    frac = min(frac_a, frac_b)
    return _align(a, frac_a, frac) + _align(b, frac_b, frac), frac


@njit(cache=True)
def _sub(a, frac_a, b, frac_b):
    frac = min(frac_a, frac_b)
    return _align(a, frac_a, frac) - _align(b, frac_b, frac), frac


@njit(cache=True)
def _mul(a, frac_a, b, frac_b):
    frac = min(frac_a, frac_b)
    return shift_round_jit(a * b, frac_a + frac_b - frac), frac


@njit(cache=True)
def _relu(q):
    return max(q, 0)


@njit(cache=True)
def _sigmoid(q, frac):
    return lut_lookup_jit(SIGMOID_TABLE, _align(q, frac, LUT_INPUT_FRAC))


@njit(cache=True)
def _tanh(q, frac):
    return lut_lookup_jit(TANH_TABLE, _align(q, frac, LUT_INPUT_FRAC))


@njit(cache=True)
def _inh(v, frac_v, s, frac_s):
    """``inh(v, s) = relu(v - relu(-s)) - relu(-v - relu(-s))``."""
    a = _relu(-s)
    keep, frac_keep = _sub(v, frac_v, a, frac_s)
    cut, frac_cut = _sub(-v, frac_v, a, frac_s)
    return _sub(_relu(keep), frac_keep, _relu(cut), frac_cut)


@njit(cache=True)
def _clip(u, frac):
    """``clip(u) = relu(u + 1) - relu(u - 1) - 1``."""
    one = np.int64(1) << frac
    return _relu(u + one) - _relu(u - one) - one, frac


@njit(cache=True)
def _quantize_inputs(x, scale, qmax, xq):
    """``xq = saturate(floor(x * scale + 0.5))`` like ``quantize_inputs``; returns how many saturated."""
    saturated = 0
    for k in range(x.shape[0]):
        v = np.floor(np.float64(x[k]) * scale + 0.5)
        clipped = min(max(v, -qmax), qmax)
        saturated += clipped != v
        xq[k] = np.int64(clipped)
    return saturated


@njit(cache=True)
def _matvec_by_rows(weight, h, acc):
    """``acc[b] = W h[b]`` for each row ``h[b]`` of ``h`` [B, K], as one dot product per row of
    ``W`` [rows, K] and sequence: best for long rows (``W_hh``). A row of ``W`` serves every
    sequence before the next row is read, so at B > 1 it comes from L1, not memory."""
    rows, k_len = weight.shape
    for r in range(rows):
        w = weight[r]
        for b in range(h.shape[0]):
            v = h[b]
            s = 0
            for k in range(k_len):
                s += w[k] * v[k]
            acc[b, r] = s  # int32 or int64: the accumulator's width, no overflow by construction


@njit(cache=True)
def _matvec_by_columns(weight_t, v, acc):
    """``acc = W v`` as a sum of the rows of ``W^T`` [K, rows]: best for short rows (``W_ih``, small I)."""
    k_len, rows = weight_t.shape
    acc[:] = 0
    for k in range(k_len):
        vk = v[k]
        w = weight_t[k]
        for r in range(rows):
            acc[r] += vk * w[r]


def _recurrent_product(w_hh, w_padded, offset, h, u, acc):
    """``acc[b] = W_hh h[b]`` for the states ``h`` [B, H]: on ``vpdpbusd`` for int8 where the
    CPU has it (``w_padded``, ``offset`` from :func:`~rnnbench.backends.integer.vnni.pad_for_vnni`,
    ``u`` [B, its row length] scratch), otherwise one dot product per row and sequence."""


@overload(_recurrent_product, jit_options={"cache": True})
def _recurrent_product_impl(w_hh, w_padded, offset, h, u, acc):
    if HAS_VNNI and w_hh.dtype == types.int8:
        def vnni(w_hh, w_padded, offset, h, u, acc):
            batch, hidden = h.shape
            for b in range(batch):
                for k in range(hidden):
                    u[b, k] = np.uint8(np.int32(h[b, k]) + 128)
            dot_rows_u8s8(w_padded, u, acc)
            for b in range(batch):
                for r in range(w_hh.shape[0]):
                    acc[b, r] -= offset[r]
        return vnni

    def by_rows(w_hh, w_padded, offset, h, u, acc):
        _matvec_by_rows(w_hh, h, acc)
    return by_rows


@njit(cache=True)
def _rescale(acc, bias, multiplier, shift, pre, bound):
    """``pre = saturate(shift_round((acc + bias) * multiplier, shift), bound)``; returns #saturated.

    ``acc`` may be longer than ``pre`` (padded rows); only ``pre``'s rows are rescaled.
    """
    saturated = 0
    for r in range(pre.shape[0]):
        p = shift_round_jit(np.int64(acc[r] + bias[r]) * multiplier[r], shift)
        clipped = saturate_jit(p, bound)
        saturated += clipped != p
        pre[r] = clipped
    return saturated


@njit(cache=True)
def _gru_units(gi, gh, h, hidden, frac_pre, frac_h, qmax):
    for j in range(hidden):
        r = _sigmoid(*_add(gi[j], frac_pre, gh[j], frac_pre))
        z = _sigmoid(*_add(gi[hidden + j], frac_pre, gh[hidden + j], frac_pre))
        rg, frac_rg = _mul(r, GATE_FRAC, np.int64(gh[2 * hidden + j]), frac_pre)
        n = _tanh(*_add(gi[2 * hidden + j], frac_pre, rg, frac_rg))
        one_minus_z, frac_omz = _sub(np.int64(1) << GATE_FRAC, GATE_FRAC, z, GATE_FRAC)
        keep, frac_keep = _mul(one_minus_z, frac_omz, n, GATE_FRAC)
        mix, frac_mix = _mul(z, GATE_FRAC, np.int64(h[j]), frac_h)
        h_new, frac_new = _add(keep, frac_keep, mix, frac_mix)
        h[j] = saturate_jit(_align(h_new, frac_new, frac_h), qmax)


@njit(cache=True)
def _lstm_units(gi, gh, h, c, hidden, frac_pre, frac_h, frac_c, qmax, bound):
    saturated = 0
    for j in range(hidden):
        i = _sigmoid(*_add(gi[j], frac_pre, gh[j], frac_pre))
        f = _sigmoid(*_add(gi[hidden + j], frac_pre, gh[hidden + j], frac_pre))
        g = _tanh(*_add(gi[2 * hidden + j], frac_pre, gh[2 * hidden + j], frac_pre))
        o = _sigmoid(*_add(gi[3 * hidden + j], frac_pre, gh[3 * hidden + j], frac_pre))
        fc, frac_fc = _mul(f, GATE_FRAC, np.int64(c[j]), frac_c)
        ig, frac_ig = _mul(i, GATE_FRAC, g, GATE_FRAC)
        c_new, frac_new = _add(fc, frac_fc, ig, frac_ig)
        h_new, frac_h_new = _mul(o, GATE_FRAC, _tanh(c_new, frac_new), GATE_FRAC)
        h[j] = saturate_jit(_align(h_new, frac_h_new, frac_h), qmax)
        c_q = _align(c_new, frac_new, frac_c)
        stored = saturate_jit(c_q, bound)
        saturated += stored != c_q
        c[j] = stored
    return saturated


@njit(cache=True)
def _reluadd_units(gi, gh, h, hidden, frac_pre, frac_h, qmax):
    for j in range(hidden):
        s_r, frac_r = _add(gi[j], frac_pre, gh[j], frac_pre)
        s_z, frac_z = _add(gi[hidden + j], frac_pre, gh[hidden + j], frac_pre)
        gated, frac_gated = _inh(np.int64(gh[2 * hidden + j]), frac_pre, s_r, frac_r)
        n, frac_n = _clip(*_add(gi[2 * hidden + j], frac_pre, gated, frac_gated))
        keep, frac_keep = _inh(np.int64(h[j]), frac_h, s_z, frac_z)
        take, frac_take = _inh(n, frac_n, -s_z, frac_z)
        h_new, frac_new = _clip(*_add(keep, frac_keep, take, frac_take))
        h[j] = saturate_jit(_align(h_new, frac_new, frac_h), qmax)


@njit(cache=True, nogil=True)  # nogil: the backend runs slices of a batch on several threads
def run_sequences(cell, x, x_scale, w_ih_t, b_ih, m_ih, shift_ih, w_hh, b_hh, m_hh, shift_hh,
                  frac_pre, frac_h, frac_c, acc, gh, w_padded, offset):
    """Run float inputs ``x`` [T, B, I], quantized with ``x_scale = 2**frac_x``, from a zero state.

    Returns ``(outputs [T, B, H]`` at ``frac_h`` fractional bits, ``values saturated)``.
    ``acc`` [B, R] and ``gh`` [R] are scratch of the accumulator's type (int32 or int64) and
    of the elementwise type (int16 or int32, also that of the cell state), one entry per row
    (``acc`` one per row of ``w_padded`` if that has more); ``w_padded`` and ``offset`` are
    ``W_hh`` laid out for ``vpdpbusd`` (used for int8 where the CPU has it).
    """
    seq_len, batch, inputs = x.shape
    rows, hidden = w_hh.shape
    qmax = (1 << (w_hh.itemsize * 8 - 1)) - 1
    bound = (1 << (gh.itemsize * 8 - 1)) - 1
    xq = np.empty(inputs, w_ih_t.dtype)
    u = np.empty((batch, w_padded.shape[1]), np.uint8)
    gi = np.empty((seq_len, batch, rows), gh.dtype)
    h = np.zeros((batch, hidden), w_hh.dtype)
    c = np.zeros((batch, hidden), gh.dtype)
    out = np.empty((seq_len, batch, hidden), w_hh.dtype)
    saturated = 0
    for t in range(seq_len):  # the input projection for every step, ahead of the recurrence
        for b in range(batch):
            saturated += _quantize_inputs(x[t, b], x_scale, qmax, xq)
            _matvec_by_columns(w_ih_t, xq, acc[0])
            saturated += _rescale(acc[0], b_ih, m_ih, shift_ih, gi[t, b], bound)
    for t in range(seq_len):
        _recurrent_product(w_hh, w_padded, offset, h, u, acc)
        for b in range(batch):
            saturated += _rescale(acc[b], b_hh, m_hh, shift_hh, gh, bound)
            if cell == GRU:
                _gru_units(gi[t, b], gh, h[b], hidden, frac_pre, frac_h, qmax)
            elif cell == LSTM:
                saturated += _lstm_units(gi[t, b], gh, h[b], c[b], hidden, frac_pre, frac_h, frac_c,
                                         qmax, bound)
            else:
                _reluadd_units(gi[t, b], gh, h[b], hidden, frac_pre, frac_h, qmax)
        out[t] = h
    return out, saturated
