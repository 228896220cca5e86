"""A plain container of NumPy weights: what backends consume instead of a torch module."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnbench.cells.equations import GATES


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
