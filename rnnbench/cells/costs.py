"""Deterministic cost model: operation counts per time step, derived from the cell equations.

The elementwise part is counted by running the cell's own step function
(:mod:`rnnbench.cells.equations`) on :class:`Counted` values that record every
operation instead of computing it; the two matrix products are counted analytically.
Counts are per time step for one sequence (multiply by the batch size for a batch).

Categories:

- ``weight_mul``: a multiplication by a weight or constant (plaintext under encryption);
- ``data_mul``: a multiplication of two data-dependent values (ciphertext x ciphertext);
- ``add``: additions, subtractions and negations, including the matrix-product accumulations
  and bias additions;
- ``nonlin``: evaluations of sigmoid, tanh or relu (also given per kind).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rnnbench.cells.equations import GATES, NonlinearityOps
from rnnbench.cells.reference import STEPS


class _Tally(NonlinearityOps):
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def apply(self, kind: str, v: Counted) -> Counted:
        self.counts[kind] += 1
        return Counted(self)


class Counted:
    """A stand-in for one data-dependent scalar; arithmetic on it is tallied, not computed."""

    def __init__(self, tally: _Tally) -> None:
        self.tally = tally

    def __add__(self, other: object) -> Counted:
        self.tally.counts["add"] += 1
        return Counted(self.tally)

    __radd__ = __add__
    __sub__ = __add__
    __rsub__ = __add__

    def __neg__(self) -> Counted:
        self.tally.counts["add"] += 1
        return Counted(self.tally)

    def __mul__(self, other: object) -> Counted:
        self.tally.counts["data_mul" if isinstance(other, Counted) else "weight_mul"] += 1
        return Counted(self.tally)

    __rmul__ = __mul__


@dataclass(frozen=True)
class StepCost:
    """Operation counts of one time step of one sequence."""

    weight_mul: int
    data_mul: int
    add: int
    sigmoid: int
    tanh: int
    relu: int

    @property
    def nonlin(self) -> int:
        return self.sigmoid + self.tanh + self.relu

    def columns(self) -> dict[str, int]:
        """The cost-model columns of a results row."""
        return {
            "ops_weight_mul": self.weight_mul,
            "ops_data_mul": self.data_mul,
            "ops_add": self.add,
            "ops_nonlin": self.nonlin,
        }


def elementwise_counts(cell: str) -> Counter[str]:
    """Operations per hidden unit in the elementwise part of one step."""
    tally = _Tally()
    gates = GATES[cell]
    gi = tuple(Counted(tally) for _ in range(gates))
    gh = tuple(Counted(tally) for _ in range(gates))
    h = Counted(tally)
    state = (h, Counted(tally)) if cell == "lstm" else h
    STEPS[cell](tally, gi, gh, state)
    return tally.counts


def step_cost(cell: str, input_size: int, hidden_size: int) -> StepCost:
    """Operation counts of one time step of ``cell`` for one sequence."""
    rows = GATES[cell] * hidden_size
    unit = elementwise_counts(cell)
    matvec_mul = rows * (input_size + hidden_size)
    # Dot-product accumulations plus the two bias additions per row.
    matvec_add = rows * (input_size - 1) + rows * (hidden_size - 1) + 2 * rows
    return StepCost(
        weight_mul=matvec_mul + unit["weight_mul"] * hidden_size,
        data_mul=unit["data_mul"] * hidden_size,
        add=matvec_add + unit["add"] * hidden_size,
        sigmoid=unit["sigmoid"] * hidden_size,
        tanh=unit["tanh"] * hidden_size,
        relu=unit["relu"] * hidden_size,
    )


def integer_step_cost(cell: str, input_size: int, hidden_size: int, bits: int) -> dict[str, int]:
    """Operations per time step of one sequence in the integer scheme, by operand width.

    The scheme is the one of :mod:`rnnbench.backends.integer`: the matrix products are
    multiply-accumulates of ``bits``-bit weights and activations (``ops_int8`` or
    ``ops_int16``; their accumulators are 32 bits wide for 8 bits, 64 for 16); per row of
    each of the two products, a bias addition and a rescaling (multiply, rounding shift,
    saturate) of the accumulator count two ``ops_int32``; the elementwise additions,
    subtractions, negations and ReLUs (max) and the storing of the state run at twice the
    weights' width (``ops_int16`` for 8 bits, ``ops_int32`` for 16); a product of two
    data-dependent values (a Q0.15 gate times a value) is a widening multiply with a
    rounding shift back (one ``ops_int32``); every sigmoid or tanh is one interpolated
    int16 table lookup (``ops_lut``).
    """
    rows = GATES[cell] * hidden_size
    unit = elementwise_counts(cell)
    stored_state = 2 if cell == "lstm" else 1
    counts = {"ops_int8": 0, "ops_int16": 0, "ops_int32": 0}
    counts[f"ops_int{bits}"] += rows * (input_size + hidden_size)
    counts[f"ops_int{2 * bits}"] += hidden_size * (
        unit["add"] + unit["relu"] + unit["weight_mul"] + stored_state)
    counts["ops_int32"] += 2 * 2 * rows + hidden_size * unit["data_mul"]
    return {**counts, "ops_lut": hidden_size * (unit["sigmoid"] + unit["tanh"])}
