"""``torch``: what a PyTorch user runs today.

GRU and LSTM run as ``torch.nn.GRU`` / ``torch.nn.LSTM`` (PyTorch's fused CPU
kernels); reluadd, which PyTorch has no kernel for, runs as the reference module.
All under ``torch.inference_mode()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rnnbench.backends.base import Backend, Prepared
from rnnbench.cells import Weights, make_cell

_TORCH_MODULES = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}


def torch_module(weights: Weights) -> torch.nn.Module:
    """``nn.GRU``/``nn.LSTM`` holding ``weights``, or the reference module for other cells."""
    tensors = {k: torch.from_numpy(getattr(weights, k).copy()) for k in
               ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    if weights.cell in _TORCH_MODULES:
        module = _TORCH_MODULES[weights.cell](weights.input_size, weights.hidden_size)
        module.load_state_dict({f"{k}_l0": v for k, v in tensors.items()})
    else:
        module = make_cell(weights.cell, weights.input_size, weights.hidden_size)
        module.load_state_dict(tensors)
    return module.eval()


class TorchPrepared(Prepared):
    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module

    def run(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out, _ = self.module(torch.from_numpy(x))
        return out.numpy()


class TorchBackend(Backend):
    name = "torch"
    description = "torch.nn.GRU / torch.nn.LSTM; reluadd as the reference module"

    def prepare(
        self,
        weights: Weights,
        params: Mapping[str, Any],
        calibration: np.ndarray,
        threads: int = 1,
    ) -> Prepared:
        return TorchPrepared(torch_module(weights))


BACKEND = TorchBackend()
