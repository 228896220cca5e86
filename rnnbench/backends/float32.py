"""``float``: the project's own fused float32 kernels, compiled with numba.

One compiled call runs a whole batch of sequences [T, B, I]:

* the input projection of all T steps is one matrix product (BLAS sgemm), with every bias
  that can be folded into it;
* a compiled loop over time then computes the recurrent product ``gh = h W_hh^T`` and the
  cell's elementwise update, with no Python in between.

The recurrent product is BLAS sgemm (``np.dot`` into a preallocated buffer), except for a
single sequence with a small hidden size, where BLAS's call overhead dominates and a
hand-written matrix-vector product (axpys over rows of ``W_hh^T``, four rows per pass) is
faster. At large sizes both are bound by streaming the weights from cache or memory.

The elementwise update is a separate loop over the hidden units that reads ``gi`` and
``gh`` directly (no accumulator copies) and compiles to AVX-512/AVX2 code: sigmoid and
tanh use the same kind of rational approximation as ONNX Runtime's MLAS and Eigen
(accurate to a few float32 ulp), and every kernel is compiled with
``error_model="numpy"`` because numba's default ("python") guards each float division
against a zero divisor, a branch that keeps LLVM from vectorising the loop.

Numba's BLAS is SciPy's OpenBLAS; it is imported up front so that thread limits set
after importing this module (threadpoolctl) reach it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (loaded up front so thread limits reach numba's BLAS)
from numba import njit

from rnnbench.backends.base import Backend, Prepared
from rnnbench.cells import Weights

GRU, LSTM, RELUADD = 0, 1, 2
CELL_CODES = {"gru": GRU, "lstm": LSTM, "reluadd": RELUADD}

# Eigen's float tanh: x * P(x^2) / Q(x^2) on [-7.9, 7.9], saturated outside.
_TANH_CLAMP = np.float32(7.90531110763549805)
_A1, _A3, _A5 = 4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05
_A7 = 5.12229709037114e-08
_A9, _A11, _A13 = -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16
_B0, _B2, _B4 = 4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04
_B6 = 1.19825839466702e-06


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
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


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def fast_sigmoid(x):
    return np.float32(0.5) * fast_tanh(np.float32(0.5) * x) + np.float32(0.5)


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def relu(x):
    return max(x, np.float32(0.0))


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _gru_units(gi, gh, b_hn, h, hidden):
    """GRU update in place; ``gi`` holds every bias except ``b_hn``, which ``r`` multiplies."""
    H = hidden
    for j in range(H):
        r = fast_sigmoid(gi[j] + gh[j])
        z = fast_sigmoid(gi[H + j] + gh[H + j])
        n = fast_tanh(gi[2 * H + j] + r * (gh[2 * H + j] + b_hn[j]))
        h[j] = (np.float32(1.0) - z) * n + z * h[j]


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _lstm_units(gi, gh, h, c, hidden):
    """LSTM update in place; ``gi`` holds both biases."""
    H = hidden
    for j in range(H):
        i = fast_sigmoid(gi[j] + gh[j])
        f = fast_sigmoid(gi[H + j] + gh[H + j])
        g = fast_tanh(gi[2 * H + j] + gh[2 * H + j])
        o = fast_sigmoid(gi[3 * H + j] + gh[3 * H + j])
        c_new = f * c[j] + i * g
        c[j] = c_new
        h[j] = o * fast_tanh(c_new)


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _inh(v, s):
    a = relu(-s)
    return relu(v - a) - relu(-v - a)


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _clip(u):
    one = np.float32(1.0)
    return relu(u + one) - relu(u - one) - one


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _reluadd_units(gi, gh, b_hn, h, hidden):
    """reluadd update in place, written with the ReLUs and additions of its definition."""
    H = hidden
    for j in range(H):
        s_r = gi[j] + gh[j]
        s_z = gi[H + j] + gh[H + j]
        n = _clip(gi[2 * H + j] + _inh(gh[2 * H + j] + b_hn[j], s_r))
        h[j] = _clip(_inh(h[j], s_z) + _inh(n, -s_z))


# Up to this hidden size a single sequence's recurrent product is the hand-written matvec
# below; from there on OpenBLAS is as fast or faster (it prefetches better from memory).
MATVEC_MAX_HIDDEN = 64


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _matvec(w_hh_t, h, gh):
    """``gh = W_hh h`` as axpys over the rows of ``W_hh^T``, four rows per pass.

    Contiguous and vectorised; fusing four rows loads and stores ``gh`` once per four rows
    of weights, so the loop is bound by loading the weights rather than by stores.
    """
    hidden, rows = w_hh_t.shape
    gh[:] = 0.0
    j = 0
    while j + 4 <= hidden:
        h0, h1, h2, h3 = h[j], h[j + 1], h[j + 2], h[j + 3]
        for k in range(rows):
            gh[k] += (
                h0 * w_hh_t[j, k]
                + h1 * w_hh_t[j + 1, k]
                + (h2 * w_hh_t[j + 2, k] + h3 * w_hh_t[j + 3, k])
            )
        j += 4
    while j < hidden:
        hj = h[j]
        for k in range(rows):
            gh[k] += hj * w_hh_t[j, k]
        j += 1


@njit(cache=True, fastmath=True, error_model="numpy")
def run_sequences(cell, x, w_ih_t, b_in, w_hh_t, b_hn):
    """Run ``x`` [T, B, I] from a zero state; return ``(outputs [T, B, H], h, c)``.

    ``b_in`` is added to the input projection and holds every bias that can be folded into
    it; ``b_hn`` is GRU's and reluadd's recurrent bias of the n block (unused by LSTM).
    """
    seq_len, batch, inputs = x.shape
    hidden, rows = w_hh_t.shape
    gi = np.dot(x.reshape(seq_len * batch, inputs), w_ih_t)
    gi += b_in
    out = np.empty((seq_len, batch, hidden), np.float32)
    h = np.zeros((batch, hidden), np.float32)
    c = np.zeros((batch, hidden), np.float32)
    gh = np.empty((batch, rows), np.float32)
    hand_matvec = batch == 1 and hidden <= MATVEC_MAX_HIDDEN
    for t in range(seq_len):
        if hand_matvec:
            _matvec(w_hh_t, h[0], gh[0])
        else:
            np.dot(h, w_hh_t, gh)
        for b in range(batch):
            g = gi[t * batch + b]
            if cell == GRU:
                _gru_units(g, gh[b], b_hn, h[b], hidden)
            elif cell == LSTM:
                _lstm_units(g, gh[b], h[b], c[b], hidden)
            else:
                _reluadd_units(g, gh[b], b_hn, h[b], hidden)
        out[t] = h
    return out, h, c


class FusedFloat(Prepared):
    def __init__(self, weights: Weights) -> None:
        self.cell = CELL_CODES[weights.cell]
        hidden = weights.hidden_size
        self.w_ih_t = np.ascontiguousarray(weights.weight_ih.T)
        self.w_hh_t = np.ascontiguousarray(weights.weight_hh.T)
        # All biases but GRU's/reluadd's b_hn (which r gates) fold into the input projection.
        folded = weights.weight_hh.shape[0] if self.cell == LSTM else 2 * hidden
        self.b_in = weights.bias_ih.copy()
        self.b_in[:folded] += weights.bias_hh[:folded]
        self.b_hn = np.ascontiguousarray(weights.bias_hh[2 * hidden : 3 * hidden])

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        out, _, _ = run_sequences(self.cell, x, self.w_ih_t, self.b_in, self.w_hh_t, self.b_hn)
        return out


class FloatBackend(Backend):
    name = "float"
    description = "fused float32 kernels compiled with numba (one call per batch of sequences)"

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
