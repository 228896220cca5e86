"""reluadd's forward and backward pass as compiled kernels, for training.

The reference module runs a step as a dozen small PyTorch operations, each recorded by
autograd, so training reluadd through it was about ten times slower per step than
``nn.GRU``'s fused kernel. :class:`FusedReluAdd` is a ``torch.autograd.Function`` over
two numba kernels that compute exactly the reference's equations
(:func:`rnnbench.cells.equations.reluadd_step`) and their derivatives:

* forward: the input projection of all steps as one product, then per step the
  recurrent product and the elementwise update; it keeps every step's pre-activations;
* backward: per step (latest first) the elementwise derivatives and ``dh W_hh``; the
  weight gradients as three products over all steps at once after the loop.

Products are MKL's sgemm (:mod:`rnnbench.backends.mkl`). The derivative of ``relu`` at 0
is 0, as in PyTorch. Tests check the gradients against autograd on the reference module.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from rnnbench.backends import (
    mkl,
    simd,  # noqa: F401  (before any compilation)
)
from rnnbench.backends.mkl import NO_TRANS, ROW_MAJOR, TRANS, c_call

_F32, _I32 = np.float32, np.int32


@njit(cache=True, error_model="numpy", inline="always")
def _gemm(sgemm, trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc):
    """``c = op(a) @ op(b) + beta * c`` (row-major, MKL's ``cblas_sgemm_compute``)."""
    c_call(sgemm, (_I32(ROW_MAJOR), _I32(trans_a), _I32(trans_b), _I32(m), _I32(n), _I32(k),
                   a, _I32(lda), b, _I32(ldb), _F32(beta), c, _I32(ldc)))


@njit(cache=True, error_model="numpy", inline="always")
def _relu(v):
    return max(v, _F32(0.0))


@njit(cache=True, error_model="numpy", inline="always")
def _step(v):
    """``relu'(v)``: 1 where ``v > 0``, else 0 (PyTorch's choice at 0)."""
    return _F32(1.0) if v > 0 else _F32(0.0)


@njit(cache=True, error_model="numpy", inline="always")
def _inh(v, s):
    a = _relu(-s)
    return _relu(v - a) - _relu(-v - a)


@njit(cache=True, error_model="numpy", inline="always")
def _clip(u):
    return _relu(u + _F32(1.0)) - _relu(u - _F32(1.0)) - _F32(1.0)


@njit(cache=True, error_model="numpy")
def reluadd_forward(x, w_ih, w_hh, b_ih, b_hh, sgemm):
    """``x`` [T, B, I] from a zero state -> ``(out [T, B, H], gi [T*B, 3H], gh [T*B, 3H])``.

    ``gi``/``gh`` are the pre-activations with their biases, kept for the backward pass.
    """
    seq_len, batch, inputs = x.shape
    rows, hidden = w_hh.shape
    gi = np.empty((seq_len * batch, rows), np.float32)
    gi[:] = b_ih
    _gemm(sgemm, NO_TRANS, TRANS, seq_len * batch, rows, inputs, x, inputs, w_ih, inputs, 1.0,
          gi, rows)
    gh = np.empty((seq_len * batch, rows), np.float32)
    out = np.empty((seq_len, batch, hidden), np.float32)
    h = np.zeros((batch, hidden), np.float32)
    for t in range(seq_len):
        g_h = gh[t * batch:(t + 1) * batch]
        g_h[:] = b_hh
        _gemm(sgemm, NO_TRANS, TRANS, batch, rows, hidden, h, hidden, w_hh, hidden, 1.0, g_h, rows)
        for b in range(batch):
            g_i, g_hb, h_b = gi[t * batch + b], g_h[b], h[b]
            for j in range(hidden):
                s_r = g_i[j] + g_hb[j]
                s_z = g_i[hidden + j] + g_hb[hidden + j]
                n = _clip(g_i[2 * hidden + j] + _inh(g_hb[2 * hidden + j], s_r))
                h_b[j] = _clip(_inh(h_b[j], s_z) + _inh(n, -s_z))
        out[t] = h
    return out, gi, gh


@njit(cache=True, error_model="numpy")
def reluadd_backward(x, w_ih, w_hh, out, gi, gh, grad_out, sgemm):
    """Gradients ``(dx, dW_ih, dW_hh, db_ih, db_hh)`` of the loss given ``grad_out`` = dL/d out."""
    seq_len, batch, inputs = x.shape
    rows, hidden = w_hh.shape
    one = _F32(1.0)
    dgi = np.empty((seq_len * batch, rows), np.float32)
    dgh = np.empty((seq_len * batch, rows), np.float32)
    dh = np.zeros((batch, hidden), np.float32)  # dL/dh_t from later steps and the output
    zeros = np.zeros(hidden, np.float32)
    for t in range(seq_len - 1, -1, -1):
        dh += grad_out[t]
        for b in range(batch):
            k = t * batch + b
            g_i, g_h, d_i, d_h = gi[k], gh[k], dgi[k], dgh[k]
            h_prev = out[t - 1, b] if t > 0 else zeros
            dh_b = dh[b]
            for j in range(hidden):
                hp = h_prev[j]
                s_r = g_i[j] + g_h[j]
                s_z = g_i[hidden + j] + g_h[hidden + j]
                m = g_h[2 * hidden + j]
                a_r = _relu(-s_r)
                u = g_i[2 * hidden + j] + (_relu(m - a_r) - _relu(-m - a_r))
                n = _clip(u)
                a_z = _relu(-s_z)
                a_nz = _relu(s_z)
                p = (_relu(hp - a_z) - _relu(-hp - a_z)) + (_relu(n - a_nz) - _relu(-n - a_nz))
                dp = dh_b[j] * (_step(p + one) - _step(p - one))
                # keep = inh(h, s_z): through h and through s_z (a_z = relu(-s_z))
                up_h, down_h = _step(hp - a_z), _step(-hp - a_z)
                d_hp = dp * (up_h + down_h)
                ds_z = dp * (up_h - down_h) * _step(-s_z)
                # take = inh(n, -s_z): through n and through s_z (a_nz = relu(s_z))
                up_n, down_n = _step(n - a_nz), _step(-n - a_nz)
                dn = dp * (up_n + down_n)
                ds_z -= dp * (up_n - down_n) * _step(s_z)
                # n = clip(gi_n + inh(m, s_r))
                du = dn * (_step(u + one) - _step(u - one))
                up_m, down_m = _step(m - a_r), _step(-m - a_r)
                ds_r = du * (up_m - down_m) * _step(-s_r)
                d_i[j] = d_h[j] = ds_r
                d_i[hidden + j] = d_h[hidden + j] = ds_z
                d_i[2 * hidden + j] = du
                d_h[2 * hidden + j] = du * (up_m + down_m)
                dh_b[j] = d_hp
        # dL/dh_{t-1} also flows through gh = W_hh h_{t-1}
        _gemm(sgemm, NO_TRANS, NO_TRANS, batch, hidden, rows, dgh[t * batch:], rows, w_hh, hidden,
              1.0, dh, hidden)
    dw_ih = np.zeros((rows, inputs), np.float32)
    _gemm(sgemm, TRANS, NO_TRANS, rows, inputs, seq_len * batch, dgi, rows, x, inputs, 0.0,
          dw_ih, inputs)
    dw_hh = np.zeros((rows, hidden), np.float32)
    if seq_len > 1:  # h_{-1} = 0 contributes nothing
        _gemm(sgemm, TRANS, NO_TRANS, rows, hidden, (seq_len - 1) * batch, dgh[batch:], rows, out,
              hidden, 0.0, dw_hh, hidden)
    dx = np.empty((seq_len, batch, inputs), np.float32)
    _gemm(sgemm, NO_TRANS, NO_TRANS, seq_len * batch, inputs, rows, dgi, rows, w_ih, inputs, 0.0,
          dx, inputs)
    return dx, dw_ih, dw_hh, dgi.sum(axis=0), dgh.sum(axis=0)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


class FusedReluAdd(torch.autograd.Function):
    """``(x, W_ih, W_hh, b_ih, b_hh) -> outputs [T, B, H]`` of reluadd from a zero state (CPU, float32)."""

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh):  # noqa: D102
        arrays = [_numpy(t) for t in (x, w_ih, w_hh)]
        out, gi, gh = reluadd_forward(*arrays, _numpy(b_ih), _numpy(b_hh), mkl.SGEMM_COMPUTE)
        ctx.kept = (*arrays, out, gi, gh)
        return torch.from_numpy(out.copy())

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        x, w_ih, w_hh, out, gi, gh = ctx.kept
        grads = reluadd_backward(x, w_ih, w_hh, out, gi, gh, _numpy(grad_out), mkl.SGEMM_COMPUTE)
        dx, *rest = (torch.from_numpy(g) for g in grads)
        return (dx if ctx.needs_input_grad[0] else None, *rest)


def fused_reluadd(x: torch.Tensor, cell: torch.nn.Module) -> torch.Tensor:
    """Outputs [T, B, H] of the reluadd reference module ``cell`` on ``x``, trained through the kernels."""
    return FusedReluAdd.apply(x, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
