"""A plain container of NumPy weights (what backends consume instead of a torch module),
and the cell run on them in float64 NumPy: the plaintext reference of backends that
approximate or observe the cell (quantization ranges, CKKS polynomials)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnbench.cells.equations import GATES, unroll


@dataclass(frozen=True)
class Weights:
    """A cell's parameters as float32 arrays, in PyTorch's names, shapes and gate order."""

    cell: str
    weight_ih: np.ndarray  # [G*H, I]
    weight_hh: np.ndarray  # [G*H, H]
    bias_ih: np.ndarray  # [G*H]
    bias_hh: np.ndarray  # [G*H]

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.shape[1]

    @property
    def input_size(self) -> int:
        return self.weight_ih.shape[1]

    @property
    def gates(self) -> int:
        return GATES[self.cell]

    @classmethod
    def from_module(cls, module) -> Weights:
        """Copy the parameters of a :class:`~rnnbench.cells.reference.RecurrentCell`."""

        def arr(p):
            return np.ascontiguousarray(p.detach().cpu().numpy(), dtype=np.float32)

        return cls(
            module.cell,
            arr(module.weight_ih),
            arr(module.weight_hh),
            arr(module.bias_ih),
            arr(module.bias_hh),
        )


class NumpyOps:
    """The ``ops`` namespace of :mod:`rnnbench.cells.equations` for float NumPy arrays."""

    @staticmethod
    def sigmoid(v: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-v))

    tanh = staticmethod(np.tanh)

    @staticmethod
    def relu(v: np.ndarray) -> np.ndarray:
        return np.maximum(v, 0.0)


def run_numpy(weights: Weights, x: np.ndarray, ops: Any = NumpyOps,
              store: Callable[[Any], Any] | None = None) -> np.ndarray:
    """The cell on ``x`` [T, B, I] in float64 NumPy with ``ops``' nonlinearities; outputs [T, B, H].

    ``store`` sees (and may replace) each step's new state, e.g. to record LSTM's cell state.
    """
    x = np.asarray(x, np.float64)
    w_hh = weights.weight_hh.astype(np.float64)
    gi_all = x @ weights.weight_ih.T.astype(np.float64) + weights.bias_ih
    zeros = np.zeros((x.shape[1], weights.hidden_size))
    state = (zeros, zeros) if weights.cell == "lstm" else zeros
    outputs, _ = unroll(weights.cell, ops, gi_all, lambda h: h @ w_hh.T + weights.bias_hh, state,
                        lambda v: np.split(v, weights.gates, -1), store)
    return np.stack(outputs)
