"""Reference cells as trainable PyTorch modules: the single source of truth for what a cell computes."""

from __future__ import annotations

import math

import torch
from torch import nn

from rnnbench.cells.equations import GATES, STEPS, unroll


class TorchOps:
    """The ``ops`` namespace of :mod:`rnnbench.cells.equations` for torch tensors."""

    sigmoid = staticmethod(torch.sigmoid)
    tanh = staticmethod(torch.tanh)
    relu = staticmethod(torch.relu)


class RecurrentCell(nn.Module):
    """One of the cells, unrolled over a sequence.

    Parameters carry PyTorch's names and shapes (``weight_ih`` [G*H, I], ``weight_hh``
    [G*H, H], ``bias_ih``, ``bias_hh`` [G*H]) so GRU and LSTM weights load 1:1 from
    ``torch.nn.GRU`` / ``torch.nn.LSTM`` (layer 0, without the ``_l0`` suffix).
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int) -> None:
        super().__init__()
        if cell not in STEPS:
            raise ValueError(f"unknown cell {cell!r}; valid cells: {', '.join(STEPS)}")
        self.cell = cell
        self.input_size = input_size
        self.hidden_size = hidden_size
        rows = GATES[cell] * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(rows))
        self.bias_hh = nn.Parameter(torch.empty(rows))
        # The nonlinearities: exact by default; polynomial-aware fine-tuning swaps in the
        # polynomials an encrypted backend evaluates (rnnbench.tasks.polyaware).
        self.ops = TorchOps

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """PyTorch's RNN initialisation: uniform in ``[-1/sqrt(H), 1/sqrt(H)]``."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-bound, bound, generator=generator)

    def initial_state(self, batch_size: int, like: torch.Tensor):
        h = like.new_zeros(batch_size, self.hidden_size)
        return (h, h.clone()) if self.cell == "lstm" else h

    def forward(self, x: torch.Tensor, state=None, store=None):
        """``x`` [T, B, I] -> ``(outputs [T, B, H], final_state)``; LSTM state is ``(h, c)``.

        ``store``: see :func:`~rnnbench.cells.equations.unroll` (TFHE-aware training snaps
        each new state to the integer reference's there).
        """
        seq_len, batch_size, _ = x.shape
        if state is None:
            state = self.initial_state(batch_size, x)
        gates = GATES[self.cell]
        # Input projection for every step at once; only the recurrence is sequential.
        gi_all = torch.nn.functional.linear(x, self.weight_ih, self.bias_ih)
        outputs, state = unroll(
            self.cell, self.ops, gi_all,
            lambda h: torch.nn.functional.linear(h, self.weight_hh, self.bias_hh), state,
            lambda v: v.chunk(gates, -1), store)
        return torch.stack(outputs), state
