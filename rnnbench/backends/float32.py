"""``float``: the project's own fused float32 kernels, compiled with numba.

One compiled call runs a whole batch of sequences [T, B, I]:

* the input projection (one product per chunk of steps that fits in L2 cache);
* the recurrent product ``gh = h W_hh^T`` of each step;
* the cell's elementwise update, written straight into the outputs, with no Python in
  between.

Both products are MKL's packed sgemm (:mod:`rnnbench.backends.mkl`): the weights are
packed once into the micro-kernel's layout, as ONNX Runtime does, and every step calls
``cblas_sgemm_compute`` from the compiled loop. A single sequence with a small hidden size
instead uses a hand-written matrix-vector product, where MKL's call costs more than the
product. (Numba's own ``np.dot`` goes through SciPy's OpenBLAS, whose sgemm reached about
10-20 GFLOP/s at B=32, H=1024 on this project's Intel Xeon (AVX-512, AMX), against MKL's 160 packed.)

At ``--threads N`` the calling thread and a pool each run this compiled loop with MKL on
one thread, over a share of the batch or, from H = 256, of the hidden units (one spinning
barrier per step, :mod:`rnnbench.backends.barrier`); see :class:`FusedFloat`.

The elementwise update is a separate loop over the hidden units that reads ``gi`` and
``gh`` directly (no accumulator copies) and compiles to AVX-512/AVX2 code: sigmoid and
tanh use the same kind of rational approximation as ONNX Runtime's MLAS and Eigen
(accurate to a few float32 ulp), and every kernel is compiled with
``error_model="numpy"`` because numba's default ("python") guards each float division
against a zero divisor, a branch that keeps LLVM from vectorising the loop.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from rnnbench.backends import (
    mkl,
    simd,  # noqa: F401  (before any compilation)
)
from rnnbench.backends.barrier import SCHED_YIELD, new_barrier, wait
from rnnbench.backends.base import Backend, Prepared
from rnnbench.backends.mkl import NO_TRANS, PACKED, ROW_MAJOR, c_call
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
def tanh_ratio(x):
    """``(p, q)`` with ``tanh(x) ~= p / q``: the division is left to the caller, which may
    merge several into one (a float32 division is the slowest vector operation here)."""
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
    return x * p, q


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def sigmoid_ratio(x):
    """``(p, q)`` with ``sigmoid(x) = (tanh(x / 2) + 1) / 2 ~= p / q``; ``0 <= p <= q``."""
    p, q = tanh_ratio(np.float32(0.5) * x)
    return np.float32(0.5) * (p + q), q


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def fast_tanh(x):
    p, q = tanh_ratio(x)
    return p / q


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def fast_sigmoid(x):
    p, q = sigmoid_ratio(x)
    return p / q


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def relu(x):
    return max(x, np.float32(0.0))


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _gru_units(gi, b_in, gh, b_hn, h_prev, h, hidden):
    """GRU update from ``h_prev`` into ``h``; ``b_in``: every bias but ``b_hn``, which ``r`` multiplies.

    ``h' = n + z (h - n)`` over one common denominator: two divisions per unit, not three.
    """
    H = hidden
    for j in range(H):
        r = fast_sigmoid(gi[j] + b_in[j] + gh[j])
        zp, zq = sigmoid_ratio(gi[H + j] + b_in[H + j] + gh[H + j])
        np_, nq = tanh_ratio(gi[2 * H + j] + b_in[2 * H + j] + r * (gh[2 * H + j] + b_hn[j]))
        h[j] = (np_ * zq + zp * (h_prev[j] * nq - np_)) / (nq * zq)


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _lstm_units(gi, b_in, gh, h, c, hidden):
    """LSTM update into ``h``, ``c`` in place; ``b_in`` holds both biases.

    ``c' = f c + i g`` and ``h' = o tanh(c')`` each over one common denominator: two
    divisions per unit, not five.
    """
    H = hidden
    for j in range(H):
        ip, iq = sigmoid_ratio(gi[j] + b_in[j] + gh[j])
        fp, fq = sigmoid_ratio(gi[H + j] + b_in[H + j] + gh[H + j])
        gp, gq = tanh_ratio(gi[2 * H + j] + b_in[2 * H + j] + gh[2 * H + j])
        op, oq = sigmoid_ratio(gi[3 * H + j] + b_in[3 * H + j] + gh[3 * H + j])
        iq_gq = iq * gq
        c_new = (fp * c[j] * iq_gq + ip * gp * fq) / (fq * iq_gq)
        c[j] = c_new
        tp, tq = tanh_ratio(c_new)
        h[j] = (op * tp) / (oq * tq)


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _inh(v, s):
    a = relu(-s)
    return relu(v - a) - relu(-v - a)


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _clip(u):
    one = np.float32(1.0)
    return relu(u + one) - relu(u - one) - one


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _reluadd_units(gi, b_in, gh, b_hn, h_prev, h, hidden):
    """reluadd update from ``h_prev`` into ``h``, with the ReLUs and additions of its definition."""
    H = hidden
    for j in range(H):
        s_r = gi[j] + b_in[j] + gh[j]
        s_z = gi[H + j] + b_in[H + j] + gh[H + j]
        n = _clip(gi[2 * H + j] + b_in[2 * H + j] + _inh(gh[2 * H + j] + b_hn[j], s_r))
        h[j] = _clip(_inh(h_prev[j], s_z) + _inh(n, -s_z))


# The input projection runs a chunk of steps at a time, sized to stay in L2 cache between
# the product that writes it and the step that reads it (the whole sequence's at B=32,
# H=1024 would be 52 MB).
INPUT_CHUNK_FLOATS = 64 * 1024

# Up to this hidden size a single sequence's recurrent product is the hand-written
# matrix-vector product below: MKL's call and dispatch cost more than the product itself.
MATVEC_MAX_HIDDEN = 16


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _matvec(w_hh, h, gh):
    """``gh = W_hh h`` as dot products over rows of ``W_hh``, four rows per pass.

    Each row is contiguous, so the inner loop is a vectorised multiply-add that reads
    ``h`` once per four rows; the four sums are reduced once per row at the end.
    """
    rows, hidden = w_hh.shape
    k = 0
    while k + 4 <= rows:
        a0 = a1 = a2 = a3 = np.float32(0.0)
        for j in range(hidden):
            hj = h[j]
            a0 += w_hh[k, j] * hj
            a1 += w_hh[k + 1, j] * hj
            a2 += w_hh[k + 2, j] * hj
            a3 += w_hh[k + 3, j] * hj
        gh[k], gh[k + 1], gh[k + 2], gh[k + 3] = a0, a1, a2, a3
        k += 4
    while k < rows:
        acc = np.float32(0.0)
        for j in range(hidden):
            acc += w_hh[k, j] * h[j]
        gh[k] = acc
        k += 1


@njit(cache=True, fastmath=True, error_model="numpy", nogil=True)
def run_sequences(cell, x, w_ih_packed, b_in, w_hh, w_hh_packed, b_hn, first_unit, hand_matvec,
                  out, first_seq, barrier, sgemm, sched_yield):
    """Run ``x`` [T, b, I] from a zero state, writing hidden units ``first_unit`` onwards of
    every step into sequences ``first_seq`` onwards of ``out`` [T, B, H]. Threads that split
    the hidden units meet at ``barrier`` (:mod:`rnnbench.backends.barrier`) after each step,
    since the next step needs every unit; threads that split the batch never wait.

    The weights are those of this thread's units, gate by gate: ``w_ih_packed``/``w_hh_packed``
    are MKL's packed ``W_ih^T``/``W_hh^T`` of their rows and ``sgemm`` the address of
    ``cblas_sgemm_compute``. ``hand_matvec`` runs a single sequence's recurrent product by
    hand on ``w_hh`` [G*H, H] instead (all units). ``b_in`` holds every bias that can be
    added to the input projection (the elementwise update adds it); ``b_hn`` is GRU's and
    reluadd's recurrent bias of the n block (unused by LSTM).
    """
    seq_len, batch, inputs = x.shape
    hidden = out.shape[2]
    rows = b_in.shape[0]  # this thread's rows of every gate
    units = rows // (4 if cell == LSTM else 3)
    last = first_unit + units
    i32, f32 = np.int32, np.float32
    chunk = max(1, min(seq_len, INPUT_CHUNK_FLOATS // (batch * rows)))
    gi = np.empty((chunk * batch, rows), np.float32)
    h_prev = np.zeros((batch, hidden), np.float32)
    c = np.zeros((batch, units), np.float32)
    gh = np.empty((batch, rows), np.float32)
    for t in range(seq_len):
        if t % chunk == 0:  # the input projection of the next chunk of steps
            m = min(chunk, seq_len - t) * batch
            c_call(sgemm, (i32(ROW_MAJOR), i32(NO_TRANS), i32(PACKED), i32(m), i32(rows),
                           i32(inputs), x[t:], i32(inputs), w_ih_packed, i32(inputs), f32(0.0),
                           gi, i32(rows)))
        if hand_matvec:
            _matvec(w_hh, h_prev[0], gh[0])
        else:
            c_call(sgemm, (i32(ROW_MAJOR), i32(NO_TRANS), i32(PACKED), i32(batch), i32(rows),
                           i32(hidden), h_prev, i32(hidden), w_hh_packed, i32(hidden), f32(0.0),
                           gh, i32(rows)))
        h = out[t][first_seq : first_seq + batch]  # the new state is written straight into the outputs
        for b in range(batch):
            g = gi[(t % chunk) * batch + b]
            if cell == GRU:
                _gru_units(g, b_in, gh[b], b_hn, h_prev[b, first_unit:last], h[b, first_unit:last],
                           units)
            elif cell == LSTM:
                _lstm_units(g, b_in, gh[b], h[b, first_unit:last], c[b], units)
            else:
                _reluadd_units(g, b_in, gh[b], b_hn, h_prev[b, first_unit:last],
                               h[b, first_unit:last], units)
        wait(barrier, sched_yield)
        h_prev = h


# At --threads N, from this hidden size on the hidden units are split across threads (each
# thread all sequences, its units' weight rows, one barrier per step); below it the batch.
# Measured at 2 threads, B = 32 (Xeon, 2026-12-02): the unit split took 0.82-0.90x the batch
# split's time at H = 1024 and LSTM H = 256 (each core streams half the weights, MKL gets all
# 32 rows), 1.2-1.7x at H <= 64, where the barrier costs about what a step does.
UNIT_SPLIT_MIN_HIDDEN = 256

NO_WAIT = new_barrier(1)  # for threads that share no units (read only: one thread never waits)


class _Units(NamedTuple):
    """The weights of a range of hidden units, every gate's rows for them."""

    first: int
    w_ih_packed: np.ndarray
    b_in: np.ndarray
    w_hh_packed: np.ndarray
    b_hn: np.ndarray


def unit_ranges(hidden: int, threads: int) -> list[tuple[int, int]]:
    """Contiguous ranges of hidden units, one per thread (fewer if there are fewer than 16
    units per thread), at multiples of 16 units (a 64-byte cache line of float32) so that no
    two threads write one line of the state."""
    parts = max(1, min(threads, hidden // 16))
    bounds = (np.linspace(0, hidden // 16, parts + 1).round().astype(int) * 16).tolist()
    bounds[-1] = hidden
    return list(zip(bounds[:-1], bounds[1:], strict=True))


@functools.cache
def batch_slices(batch: int, threads: int) -> tuple[slice, ...]:
    """How ``threads`` threads share a batch: contiguous runs of sequences, one per thread."""
    bounds = np.linspace(0, batch, min(threads, batch) + 1).round().astype(int).tolist()
    return tuple(slice(start, stop) for start, stop in zip(bounds[:-1], bounds[1:], strict=True))


class FusedFloat(Prepared):
    """The compiled kernel over prepared weights, on ``threads`` threads.

    One thread runs everything in one call. With more, the calling thread and a pool each
    run the compiled loop with MKL on one thread (:func:`mkl.one_thread_here`; the kernel
    releases the GIL), over a split of the work (:func:`split`):

    * a batch of several sequences: below ``UNIT_SPLIT_MIN_HIDDEN`` the batch is split
      (:func:`batch_slices`), each thread running its sequences; from it on the hidden units
      are (:func:`unit_ranges`), each thread running every sequence for its units and all
      meeting at a barrier after each step;
    * a single sequence: MKL's own OpenMP threads split each step's products.

    Letting MKL's threads split each product of a batch instead (the only split before)
    left the elementwise update, and each call's fork and join, on one thread: at B = 32 and
    H >= 64 two threads ran 0.7-1.6x as fast as one that way, and 1.0-2.0x as fast with
    these splits (README, ``--threads 2``). The splits change only how MKL blocks each
    product, so the outputs equal one thread's up to float rounding.
    """

    def __init__(self, weights: Weights, threads: int = 1) -> None:
        self.cell = CELL_CODES[weights.cell]
        self.hidden = weights.hidden_size
        self.w_hh = np.ascontiguousarray(weights.weight_hh, dtype=np.float32)
        self.threads = threads
        self.all_units = self._pack_units(weights, 0, self.hidden)
        self.unit_parts = ([self._pack_units(weights, *r) for r in unit_ranges(self.hidden, threads)]
                           if threads > 1 and self.hidden >= UNIT_SPLIT_MIN_HIDDEN else [])
        # With more threads MKL splits a single sequence's product; the hand matvec runs on one.
        self.hand_matvec_allowed = self.hidden <= MATVEC_MAX_HIDDEN and threads == 1
        self.pool = (ThreadPoolExecutor(threads - 1, "rnnbench-float", initializer=mkl.set_local_threads,
                                        initargs=(1,)) if threads > 1 else None)

    def _pack_units(self, weights: Weights, first: int, last: int) -> _Units:
        hidden = self.hidden
        gates = weights.weight_hh.shape[0] // hidden
        rows = np.concatenate([np.arange(g * hidden + first, g * hidden + last) for g in range(gates)])
        # All biases but GRU's/reluadd's b_hn (which r gates) fold into the input projection.
        folded = gates * hidden if self.cell == LSTM else 2 * hidden
        b_in = weights.bias_ih.copy()
        b_in[:folded] += weights.bias_hh[:folded]
        return _Units(first, mkl.pack_weights(weights.weight_ih[rows]), np.ascontiguousarray(b_in[rows]),
                      mkl.pack_weights(weights.weight_hh[rows]),
                      np.ascontiguousarray(weights.bias_hh[2 * hidden + first : 2 * hidden + last]))

    def _run(self, x: np.ndarray, out: np.ndarray, units: _Units, barrier: np.ndarray,
             sequences: slice | None = None, hand_matvec: bool = False) -> None:
        """The compiled loop for ``units`` over ``sequences`` of ``x`` (all by default); each
        thread copies its own sequences, so that the first starts while the others wake up."""
        first_seq = 0
        if sequences is not None:
            x, first_seq = np.ascontiguousarray(x[:, sequences]), sequences.start
        run_sequences(self.cell, x, units.w_ih_packed, units.b_in, self.w_hh, units.w_hh_packed,
                      units.b_hn, units.first, hand_matvec, out, first_seq, barrier, mkl.SGEMM_COMPUTE,
                      SCHED_YIELD)

    def split(self, batch: int) -> str:
        """``"none"``, ``"batch"`` or ``"units"``: how this many sequences share the threads."""
        if self.threads == 1 or batch == 1:
            return "none"
        return "units" if self.unit_parts else "batch"

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        seq_len, batch, _ = x.shape
        out = np.empty((seq_len, batch, self.hidden), np.float32)
        how = self.split(batch)
        if how == "none":
            self._run(x, out, self.all_units, NO_WAIT, None, self.hand_matvec_allowed and batch == 1)
            return out
        if how == "units":
            barrier = new_barrier(len(self.unit_parts))
            work = [(x, out, units, barrier) for units in self.unit_parts]
        else:
            work = [(x, out, self.all_units, NO_WAIT, s) for s in batch_slices(batch, self.threads)]
        others = [self.pool.submit(self._run, *args) for args in work[1:]]
        with mkl.one_thread_here():
            self._run(*work[0])
        for other in others:
            other.result()
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
        prepared = FusedFloat(weights, threads)
        prepared.run(calibration[:1, :1])  # compile (or load from numba's cache) outside the timing
        return prepared


BACKEND = FloatBackend()
