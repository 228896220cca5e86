"""The elementwise part of one time step of each cell, written once.

Every cell computes its gate pre-activations with two matrix products,
``gi = W_ih x + b_ih`` and ``gh = W_hh h + b_hh`` (rows in PyTorch's gate order),
then combines them elementwise. That elementwise part is the only place where the
cells differ, so it lives here, generic over an ``ops`` namespace that supplies
``sigmoid``, ``tanh`` and ``relu``. The same functions run on torch tensors (the
reference modules), NumPy arrays (plaintext references of other backends) and on
the operation counter of :mod:`rnnbench.cells.costs`, so the cost model is derived
from the very code that defines the cells.

reluadd is this project's precise reading of "ReLU and Addition-based Gated RNN"
(Brännvall et al., 2023): the sigmoid-gate-times-value products of GRU are replaced
by an additive ReLU inhibition, so a step needs no sigmoid, no tanh and no product
of two data-dependent values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def inh(ops: Any, v: Any, s: Any) -> Any:
    """Additive inhibition: passes ``v`` where ``s >= 0``, shrinks ``|v|`` by ``-s`` where ``s < 0``.

    An ``ops`` namespace may compute it its own way (``ops.inh``: e.g. one two-input table
    lookup under TFHE); the result must be the same function.
    """
    if hasattr(ops, "inh"):
        return ops.inh(v, s)
    return relu_inh(ops, v, s)


def relu_inh(ops: Any, v: Any, s: Any) -> Any:
    """:func:`inh` in ReLUs and additions: ``relu(v - relu(-s)) - relu(-v - relu(-s))``."""
    a = ops.relu(-s)
    return ops.relu(v - a) - ops.relu(-v - a)


def clip(ops: Any, u: Any) -> Any:
    """``min(max(u, -1), 1)`` written with ReLUs and additions only (or ``ops.clip``, like :func:`inh`)."""
    if hasattr(ops, "clip"):
        return ops.clip(u)
    return ops.relu(u + 1) - ops.relu(u - 1) - 1


def gru_step(ops: Any, gi: tuple, gh: tuple, h: Any) -> Any:
    """PyTorch ``GRUCell``: gates r, z, n; ``h' = (1 - z) * n + z * h``."""
    r = ops.sigmoid(gi[0] + gh[0])
    z = ops.sigmoid(gi[1] + gh[1])
    n = ops.tanh(gi[2] + r * gh[2])
    return (1 - z) * n + z * h


def lstm_step(ops: Any, gi: tuple, gh: tuple, state: tuple) -> tuple:
    """PyTorch ``LSTMCell``: gates i, f, g, o; returns ``(h', c')``."""
    _, c = state
    i = ops.sigmoid(gi[0] + gh[0])
    f = ops.sigmoid(gi[1] + gh[1])
    g = ops.tanh(gi[2] + gh[2])
    o = ops.sigmoid(gi[3] + gh[3])
    c_new = f * c + i * g
    return o * ops.tanh(c_new), c_new


def reluadd_step(ops: Any, gi: tuple, gh: tuple, h: Any) -> Any:
    """reluadd: GRU's weights and gate order, gating by addition and ReLU.

    ``n = clip(W_in x + b_in + inh(W_hn h + b_hn, s_r))`` and
    ``h' = clip(inh(h, s_z) + inh(n, -s_z))``.
    """
    s_r = gi[0] + gh[0]
    s_z = gi[1] + gh[1]
    n = clip(ops, gi[2] + inh(ops, gh[2], s_r))
    return clip(ops, inh(ops, h, s_z) + inh(ops, n, -s_z))


# Number of gate blocks in weight_ih / weight_hh (rows = GATES * hidden_size).
GATES = {"gru": 3, "lstm": 4, "reluadd": 3}
STEPS = {"gru": gru_step, "lstm": lstm_step, "reluadd": reluadd_step}


def hidden(cell: str, state: Any) -> Any:
    """The hidden state ``h`` of a cell's state (LSTM's state is ``(h, c)``)."""
    return state[0] if cell == "lstm" else state


def unroll(
    cell: str,
    ops: Any,
    inputs: Iterable[Any],
    recurrent: Callable[[Any], Any],
    state: Any,
    split: Callable[[Any], tuple],
    store: Callable[[Any], Any] | None = None,
) -> tuple[list[Any], Any]:
    """The recurrence of every reference, written once: ``(hidden outputs, final state)``.

    ``inputs`` yields each step's input projection ``W_ih x_t + b_ih`` (computed for all
    steps at once by the caller), ``recurrent(h)`` gives ``W_hh h + b_hh``, ``split``
    cuts a projection into its gate blocks, and ``store`` (optional) turns a new state
    into the state kept for the next step (rounding and saturating it, in integers).
    """
    step = STEPS[cell]
    outputs = []
    for gi in inputs:
        state = step(ops, split(gi), split(recurrent(hidden(cell, state))), state)
        if store is not None:
            state = store(state)
        outputs.append(hidden(cell, state))
    return outputs, state


class NonlinearityOps:
    """An ``ops`` namespace that treats its three nonlinearities alike, through ``apply``.

    For namespaces that count them or replace each by a polynomial of its kind: they
    define ``apply(kind, x)`` and get ``sigmoid``, ``tanh`` and ``relu`` from here.
    """

    def apply(self, kind: str, x: Any) -> Any:
        raise NotImplementedError

    def sigmoid(self, x: Any) -> Any:
        return self.apply("sigmoid", x)

    def tanh(self, x: Any) -> Any:
        return self.apply("tanh", x)

    def relu(self, x: Any) -> Any:
        return self.apply("relu", x)
