"""The model every task trains: a reference cell plus a linear readout of its final hidden state."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rnnbench.cells import make_cell
from rnnbench.cells.reference import TorchOps

# PyTorch's own RNN functions, as nn.GRU / nn.LSTM call them:
# (input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first).
_TORCH_RNNS = {"gru": torch.gru, "lstm": torch.lstm}


class TaskModel(nn.Module):
    """``x`` [T, B, I] -> readout of the final hidden state [B, outputs].

    The recurrent part is the reference :class:`~rnnbench.cells.RecurrentCell`, so its
    weights run unchanged on every backend; only the small readout stays in float.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, outputs: int,
                 seed: int | None = None) -> None:
        super().__init__()
        self.cell = make_cell(cell, input_size, hidden_size, seed)
        self.readout = nn.Linear(hidden_size, outputs)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        bound = 1.0 / hidden_size**0.5  # nn.Linear's initialisation, but from the model's seed
        with torch.no_grad():
            for p in self.readout.parameters():
                p.uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.recurrent_outputs(x)[-1])

    def recurrent_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs [T, B, H] of the cell through the fastest exact kernel there is for training.

        GRU and LSTM run PyTorch's fused ``nn.GRU``/``nn.LSTM`` kernels on the cell's own
        parameters; reluadd on CPU runs :mod:`rnnbench.tasks.fused`. Each computes the
        reference module's equations (tests compare outputs and gradients). A cell whose
        nonlinearities were replaced (polynomial-aware training swaps ``cell.ops``) runs the
        reference module itself, since the fused kernels know only the exact functions.
        """
        cell = self.cell
        if cell.ops is not TorchOps:
            return cell(x)[0]
        params = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
        if cell.cell in _TORCH_RNNS:
            h0 = x.new_zeros(1, x.shape[1], cell.hidden_size)
            state = (h0, h0) if cell.cell == "lstm" else h0
            return _TORCH_RNNS[cell.cell](x, state, params, True, 1, 0.0, self.training, False,
                                          False)[0]
        if cell.cell == "reluadd" and x.device.type == "cpu" and x.dtype == torch.float32:
            from rnnbench.tasks.fused import fused_reluadd  # numba and MKL only where used

            return fused_reluadd(x, cell)
        return cell(x)[0]

    def readout_numpy(self, hidden: np.ndarray) -> np.ndarray:
        """The readout applied in float64 to final hidden states [B, H] computed by any backend."""
        weight = self.readout.weight.detach().cpu().numpy().astype(np.float64)
        bias = self.readout.bias.detach().cpu().numpy().astype(np.float64)
        return np.asarray(hidden, np.float64) @ weight.T + bias

    @torch.inference_mode()
    def final_hidden(self, x: np.ndarray, chunk: int = 256) -> np.ndarray:
        """Final hidden states [N, H] of sequences ``x`` [T, N, I], in chunks to bound memory."""
        device = self.readout.weight.device
        parts = []
        for start in range(0, x.shape[1], chunk):
            outputs, _ = self.cell(torch.from_numpy(x[:, start:start + chunk]).to(device))
            parts.append(outputs[-1].cpu().numpy())
        return np.concatenate(parts)
