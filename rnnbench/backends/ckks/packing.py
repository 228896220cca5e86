"""How sequences sit in ciphertext slots, and the matrix products each layout needs.

``batch`` (throughput): slot ``b`` of every ciphertext belongs to sequence ``b``; a value
of the cell equations is one ciphertext per hidden unit (or input feature), so a
matrix product is scalar weight times ciphertext, summed, and no rotation is needed.

``vector`` (latency): one sequence per ciphertext, its vector repeated with period
``P`` (a power of two >= the vector's length) across all slots. A periodic layout is
closed under rotations and elementwise operations, so a matrix product by the
diagonal method (baby-step giant-step: about ``2 sqrt(P)`` rotations instead of ``P``)
yields the next vector already in place: no masking, no re-replication.

Both compute ``W v + b`` with one rescale per output ciphertext: every product of a
row shares one plaintext scale, so the products are summed before rescaling (the batch
packing's rows are :class:`LinComb` values, computed at the level their consumer needs).
"""

from __future__ import annotations

import math

import numpy as np
import tenseal.sealapi as seal

from rnnbench.backends.ckks.he import Enc, Engine, LinComb
from rnnbench.cells import Weights


def _period(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(n)))


class BatchPacking:
    """One slot per sequence; weights are plaintext scalars."""

    name = "batch"

    def __init__(self, weights: Weights) -> None:
        self.weights = weights
        self._sources: dict[int, tuple[list, list[Enc]]] = {}

    def rotation_steps(self) -> list[int]:
        return []

    def _wrapped(self, engine: Engine, cts: list[seal.Ciphertext]) -> list[Enc]:
        """One :class:`Enc` per ciphertext of a step's input or state, shared by all units, so
        each is mod-switched to a level once per step, not once per unit."""
        held = self._sources.get(id(cts))
        if held is None or held[0] is not cts:
            if len(self._sources) >= 4:  # the previous step's
                self._sources.clear()
            held = self._sources[id(cts)] = (cts, [Enc(engine, [ct]) for ct in cts])
        return held[1]

    def encode_weights(self, engine: Engine) -> None:
        """Nothing ahead of time: a scalar encodes in 0.1 ms, and one constant plaintext of the
        16384 ring holds 1.4 MB, too much to keep for every weight."""

    def units(self) -> list[list[int]]:
        """Hidden units are separate ciphertexts: the step is evaluated one unit at a time."""
        return [[j] for j in range(self.weights.hidden_size)]

    def groups(self, batch: int, slots: int) -> list[slice]:
        """Sequences that share ciphertexts: up to one per slot."""
        return [slice(start, min(start + slots, batch)) for start in range(0, batch, slots)]

    def evaluations(self, batch: int, slots: int) -> int:
        """Times the step's operations (:meth:`model_counts` of the cell) run per time step."""
        return math.ceil(batch / slots)

    def encrypt_inputs(self, engine: Engine, x: np.ndarray) -> list[list[seal.Ciphertext]]:
        """Per step, one ciphertext per input feature (``x`` is [T, B, I] for one group)."""
        return [[engine.encrypt(x[t, :, k]) for k in range(x.shape[2])] for t in range(x.shape[0])]

    def encrypt_state(self, engine: Engine, values: np.ndarray) -> Enc:
        """[B, H] -> one ciphertext per unit."""
        return Enc(engine, [engine.encrypt(values[:, j]) for j in range(values.shape[1])])

    def decrypt_state(self, engine: Engine, value: Enc, batch: int) -> np.ndarray:
        return np.stack([engine.decrypt(ct)[:batch] for ct in value.cts], axis=1)

    def project(self, engine: Engine, cts: list[seal.Ciphertext], matrix: np.ndarray, bias: np.ndarray,
                level: int, units: list[int]) -> tuple[LinComb, ...]:
        """``matrix @ v + bias`` for the unit in ``units``, one :class:`LinComb` per gate (at most ``level``).

        Nothing is computed yet: each gate row is computed where its consumer needs it, so a
        gate that adds both matrix products (``W_ih x + W_hh h``) is one combination rescaled
        once, and GRU's ``W_hn h`` and ``W_in x`` are computed at the level of ``r * (W_hn h)``,
        on a few primes, instead of at the top and then brought down.
        """
        (unit,) = units
        src = self._wrapped(engine, cts)
        hidden = self.weights.hidden_size
        return tuple(
            LinComb(engine, [(v, float(w)) for v, w in zip(src, matrix[g * hidden + unit], strict=True)
                             if w != 0], float(bias[g * hidden + unit]))
            for g in range(self.weights.gates))

    def model_pt_mults(self) -> int:
        """Ciphertext-plaintext products of both matrix products in one step."""
        return int(np.count_nonzero(self.weights.weight_ih) + np.count_nonzero(self.weights.weight_hh))

    def model_rotations(self) -> int:
        return 0


class VectorPacking:
    """One sequence per ciphertext, replicated with a power-of-two period; diagonal-method products."""

    name = "vector"

    def __init__(self, weights: Weights) -> None:
        self.weights = weights
        self.hidden_period = _period(weights.hidden_size)
        self.input_period = _period(weights.input_size)
        self._plain_cache: dict[tuple, list] = {}

    @staticmethod
    def _baby(period: int, gates: int) -> int:
        """Baby steps minimising ``(g - 1) + gates * (period / g - 1)`` rotations (a power of two)."""
        options = [1 << k for k in range(int(math.log2(period)) + 1)]
        return min(options, key=lambda g: (g - 1) + gates * (period // g - 1))

    def _steps(self, period: int) -> list[int]:
        g = self._baby(period, self.weights.gates)
        return list(range(1, g)) + list(range(g, period, g))

    def rotation_steps(self) -> list[int]:
        return self._steps(self.hidden_period) + self._steps(self.input_period)

    def encode_weights(self, engine: Engine) -> None:
        """Encode the diagonals for fresh operands (top level) in ``prepare``, not in the first run."""
        level = engine.top - 1
        scale = engine.scales[level] * engine.primes[level + 1] / engine.scales[engine.top]
        for matrix, period in ((self.weights.weight_ih, self.input_period),
                               (self.weights.weight_hh, self.hidden_period)):
            self._diagonals(engine, matrix, period, level + 1, scale)

    def units(self) -> list[None]:
        """All units share each ciphertext: one evaluation of the step covers them."""
        return [None]

    def groups(self, batch: int, slots: int) -> list[slice]:
        """All sequences run in lockstep (each in its own ciphertexts), so refreshes are shared."""
        return [slice(0, batch)]

    def evaluations(self, batch: int, slots: int) -> int:
        return batch

    def _tile(self, engine: Engine, vector: np.ndarray, period: int) -> np.ndarray:
        padded = np.zeros(period)
        padded[: len(vector)] = vector
        return np.tile(padded, engine.slots // period)

    def encrypt_inputs(self, engine: Engine, x: np.ndarray) -> list[list[seal.Ciphertext]]:
        """Per step, one ciphertext per sequence."""
        return [[engine.encrypt(self._tile(engine, x[t, b], self.input_period)) for b in range(x.shape[1])]
                for t in range(x.shape[0])]

    def encrypt_state(self, engine: Engine, values: np.ndarray) -> Enc:
        return Enc(engine, [engine.encrypt(self._tile(engine, v, self.hidden_period)) for v in values])

    def decrypt_state(self, engine: Engine, value: Enc, batch: int) -> np.ndarray:
        return np.stack([engine.decrypt(ct)[: self.weights.hidden_size] for ct in value.cts])

    def _diagonals(self, engine: Engine, matrix: np.ndarray, period: int, level: int, scale: float) -> list:
        """Per gate, per giant step: the (pre-rotated) diagonal plaintexts of the baby steps."""
        key = (id(matrix), level, scale)
        if key not in self._plain_cache:
            hidden, gates = self.weights.hidden_size, self.weights.gates
            width = max(self.hidden_period, period)
            g = self._baby(period, gates)
            rows = np.arange(width) % self.hidden_period
            plains = []
            for gate in range(gates):
                block = np.zeros((self.hidden_period, period))
                block[:hidden, : matrix.shape[1]] = matrix[gate * hidden:(gate + 1) * hidden]
                per_giant = []
                for j in range(0, period, g):
                    babies = []
                    for i in range(g):
                        diag = block[rows, (np.arange(width) + j + i) % period]
                        diag = np.roll(diag, j)  # pre-rotated right by the giant step
                        babies.append(engine.plain(np.tile(diag, engine.slots // width), level, scale)
                                      if np.any(diag) else None)
                    per_giant.append(babies)
                plains.append(per_giant)
            self._plain_cache[key] = plains
        return self._plain_cache[key]

    def _bias(self, engine: Engine, bias: np.ndarray, gate: int, level: int) -> seal.Plaintext:
        hidden = self.weights.hidden_size
        key = (id(bias), gate, level)
        if key not in self._plain_cache:
            vector = self._tile(engine, bias[gate * hidden:(gate + 1) * hidden], self.hidden_period)
            self._plain_cache[key] = engine.plain(vector, level, engine.scales[level])
        return self._plain_cache[key]

    def project(self, engine: Engine, cts: list[seal.Ciphertext], matrix: np.ndarray, bias: np.ndarray,
                level: int, units: None = None) -> tuple[Enc, ...]:
        """``matrix @ v + bias`` per gate for every sequence, at ``level`` with its canonical scale."""
        period = self.hidden_period if matrix is self.weights.weight_hh else self.input_period
        g = self._baby(period, self.weights.gates)
        src = [engine.mod_switch(ct, level + 1) for ct in cts]
        scale = engine.scales[level] * engine.primes[level + 1] / src[0].scale
        plains = self._diagonals(engine, matrix, period, level + 1, scale)
        # Baby-step rotations are shared by all gates.
        babies = [[ct] + [engine.rotate(ct, i) for i in range(1, g)] for ct in src]
        return tuple(
            Enc(engine, [engine.add_plain(self._giant_steps(engine, rotated, plains[gate], g, level),
                                          self._bias(engine, bias, gate, level)) for rotated in babies])
            for gate in range(self.weights.gates))

    @staticmethod
    def _giant_steps(engine: Engine, babies: list, plains: list, g: int, level: int) -> seal.Ciphertext:
        total = None
        for j, pts in enumerate(plains):
            terms = [engine.mul_plain(baby, pt)
                     for baby, pt in zip(babies, pts, strict=True) if pt is not None]
            if not terms:
                continue
            inner = terms[0]
            for term in terms[1:]:
                inner = engine.accumulate(inner, term)
            if j:
                inner = engine.rotate(inner, j * g)
            total = inner if total is None else engine.accumulate(total, inner)
        return engine.rescale(total, engine.scales[level])

    def model_pt_mults(self) -> int:
        """Nonzero diagonals of both matrices, per gate (each is one plaintext product per step)."""
        total = 0
        for matrix, period in ((self.weights.weight_ih, self.input_period),
                               (self.weights.weight_hh, self.hidden_period)):
            hidden = self.weights.hidden_size
            for gate in range(self.weights.gates):
                block = np.zeros((self.hidden_period, period))
                block[:hidden, : matrix.shape[1]] = matrix[gate * hidden:(gate + 1) * hidden]
                width = max(self.hidden_period, period)
                rows = np.arange(width) % self.hidden_period
                total += sum(bool(np.any(block[rows, (np.arange(width) + i) % period]))
                             for i in range(period))
        return total

    def model_rotations(self) -> int:
        gates = self.weights.gates
        total = 0
        for period in (self.input_period, self.hidden_period):
            g = self._baby(period, gates)
            total += (g - 1) + gates * (period // g - 1)
        return total


PACKINGS = {"batch": BatchPacking, "vector": VectorPacking}
