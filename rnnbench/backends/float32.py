"""``float``: the project's own fused float32 kernels, compiled with numba.

One compiled call runs a whole batch of sequences: the input projection for all
steps is one matrix product (BLAS sgemm), then a compiled loop over time does the
recurrent product (sgemv for one sequence, sgemm for a batch) and the cell's
elementwise update with no Python in between. sigmoid and tanh use the same kind of
vectorisable rational approximation as ONNX Runtime's MLAS and Eigen (accurate to a
few float32 ulp), so GRU and LSTM are not handicapped against ONNX Runtime by
scalar libm calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numba
import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (loaded up front so thread limits reach numba's BLAS)
from numba import njit

from rnnbench.backends.base import Backend, Prepared
from rnnbench.cells import Weights

GRU, LSTM, RELUADD = 0, 1, 2
CELL_CODES = {"gru": GRU, "lstm": LSTM, "reluadd": RELUADD}

# Eigen's float tanh: x * P(x^2) / Q(x^2) on [-7.9, 7.9], saturated outside.
_TANH_CLAMP = np.float32(7.90531110763549805)
_A1, _A3, _A5, _A7 = 4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08
_A9, _A11, _A13 = -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16
_B0, _B2, _B4, _B6 = 4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06


@njit(cache=True, fastmath=True, inline="always")
def fast_tanh(x):
    x = min(max(x, -_TANH_CLAMP), _TANH_CLAMP)
    x2 = x * x
    p = np.float32(_A13)
    p = p * x2 + np.float32(_A11)
    p = p * x2 + np.float32(_A9)
    p = p * x2 + np.float32(_A7)
    p = p * x2 + np.float32(_A5)
    p = p * x2 + np.float32(_A3)
    p = p * x2 + np.float32(_A1)
    q = np.float32(_B6)
    q = q * x2 + np.float32(_B4)
    q = q * x2 + np.float32(_B2)
    q = q * x2 + np.float32(_B0)
    return x * p / q


@njit(cache=True, fastmath=True, inline="always")
def fast_sigmoid(x):
    return np.float32(0.5) * fast_tanh(np.float32(0.5) * x) + np.float32(0.5)


@njit(cache=True, fastmath=True, inline="always")
def relu(x):
    return max(x, np.float32(0.0))


@njit(cache=True, fastmath=True, inline="always")
def _gru_units(acc, gi, h, H):
    # acc: r, z pre-activations (both projections and biases) and W_hn h + b_hn; gi: W_in x + b_in.
    for j in range(H):
        r = fast_sigmoid(acc[j])
        z = fast_sigmoid(acc[H + j])
        n = fast_tanh(gi[2 * H + j] + r * acc[2 * H + j])
        h[j] = (np.float32(1.0) - z) * n + z * h[j]


@njit(cache=True, fastmath=True, inline="always")
def _lstm_units(acc, h, c, H):
    for j in range(H):
        i = fast_sigmoid(acc[j])
        f = fast_sigmoid(acc[H + j])
        g = fast_tanh(acc[2 * H + j])
        o = fast_sigmoid(acc[3 * H + j])
        c_new = f * c[j] + i * g
        c[j] = c_new
        h[j] = o * fast_tanh(c_new)


@njit(cache=True, fastmath=True, inline="always")
def _inh(v, s):
    a = relu(-s)
    return relu(v - a) - relu(-v - a)


@njit(cache=True, fastmath=True, inline="always")
def _clip(u):
    one = np.float32(1.0)
    return relu(u + one) - relu(u - one) - one


@njit(cache=True, fastmath=True, inline="always")
def _reluadd_units(acc, gi, h, H):
    for j in range(H):
        s_r = acc[j]
        s_z = acc[H + j]
        n = _clip(gi[2 * H + j] + _inh(acc[2 * H + j], s_r))
        h[j] = _clip(_inh(h[j], s_z) + _inh(n, -s_z))


@njit(cache=True, fastmath=True, inline="always")
def _accumulate_matvec(w_hh_t, h, acc):
    """``acc += W_hh h`` as axpys over the rows of ``W_hh^T``: contiguous, vectorised, no call."""
    for j in range(w_hh_t.shape[0]):
        hj = h[j]
        for k in range(w_hh_t.shape[1]):
            acc[k] += hj * w_hh_t[j, k]


@njit(cache=True, fastmath=True)
def run_sequences(cell, x, w_ih_t, b_in, w_hh_t, b_rec):
    """Run ``x`` [T, B, I] from a zero state; return ``(outputs [T, B, H], h, c)``.

    ``b_in`` is added to the input projection and holds every bias that can be folded into
    it; ``b_rec`` starts the recurrent accumulator (GRU/reluadd: ``b_hn`` in the n block).
    """
    seq_len, batch, inputs = x.shape
    hidden, rows = w_hh_t.shape
    gi = np.dot(x.reshape(seq_len * batch, inputs), w_ih_t)
    gi += b_in
    out = np.empty((seq_len, batch, hidden), np.float32)
    h = np.zeros((batch, hidden), np.float32)
    c = np.zeros((batch, hidden), np.float32)
    acc = np.empty((batch, rows), np.float32)
    gh = np.empty((batch, rows), np.float32)
    folded = rows if cell == LSTM else 2 * hidden  # gate blocks whose gi and gh are simply summed
    for t in range(seq_len):
        for b in range(batch):
            acc[b, :folded] = gi[t * batch + b, :folded]
            acc[b, folded:] = b_rec[folded:]
        if batch == 1:
            _accumulate_matvec(w_hh_t, h[0], acc[0])
        else:
            np.dot(h, w_hh_t, gh)
            acc += gh
        for b in range(batch):
            if cell == GRU:
                _gru_units(acc[b], gi[t * batch + b], h[b], hidden)
            elif cell == LSTM:
                _lstm_units(acc[b], h[b], c[b], hidden)
            else:
                _reluadd_units(acc[b], gi[t * batch + b], h[b], hidden)
        out[t] = h
    return out, h, c


class FusedFloat(Prepared):
    def __init__(self, weights: Weights) -> None:
        self.cell = CELL_CODES[weights.cell]
        hidden = weights.hidden_size
        self.w_ih_t = np.ascontiguousarray(weights.weight_ih.T)
        self.w_hh_t = np.ascontiguousarray(weights.weight_hh.T)
        folded = weights.weight_hh.shape[0] if self.cell == LSTM else 2 * hidden
        self.b_in = weights.bias_ih.copy()
        self.b_in[:folded] += weights.bias_hh[:folded]
        self.b_rec = np.zeros_like(weights.bias_hh)
        self.b_rec[folded:] = weights.bias_hh[folded:]

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        out, _, _ = run_sequences(self.cell, x, self.w_ih_t, self.b_in, self.w_hh_t, self.b_rec)
        return out


class FloatBackend(Backend):
    name = "float"
    description = "fused float32 kernels compiled with numba (one call per batch of sequences)"

    def library_versions(self) -> dict[str, str]:
        return {"numba": numba.__version__}

    def prepare(
        self,
        weights: Weights,
        params: Mapping[str, Any],
        calibration: np.ndarray,
        threads: int = 1,
    ) -> Prepared:
        prepared = FusedFloat(weights)
        prepared.run(calibration[:1, :1])  # compile (or load from numba's cache) outside the timing
        return prepared


BACKEND = FloatBackend()
