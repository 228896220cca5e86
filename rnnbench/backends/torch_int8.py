"""``torch-int8``: PyTorch's dynamic int8 quantization of ``nn.GRU`` / ``nn.LSTM``, the peer of ``int8``.

``torch.ao.quantization.quantize_dynamic`` stores the weights as int8 (per tensor) and
quantizes the activations on the fly for each matrix product; the elementwise part
stays in float. It is what a PyTorch user gets off the shelf, but ``torch.ao.quantization``
is deprecated (PyTorch points to torchao) and may disappear from a future torch, so
the backend checks at run time and skips with a reason where it is missing. PyTorch
has no reluadd kernel to quantize, so reluadd is skipped too.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rnnbench.backends.base import Backend, Prepared
from rnnbench.backends.pytorch import TorchPrepared, torch_module
from rnnbench.cells import Weights

_SUPPORTED = ("gru", "lstm")


def _quantize_dynamic():
    """PyTorch's ``quantize_dynamic``, or ``None`` where the installed torch no longer has it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from torch.ao.quantization import quantize_dynamic
    except ImportError:
        return None
    return quantize_dynamic


class TorchInt8Backend(Backend):
    name = "torch-int8"
    description = "torch.ao.quantization.quantize_dynamic (int8 weights) of nn.GRU / nn.LSTM"
    # Measured: quantized GRU/LSTM ran ~500x slower in a child forked after torch was
    # imported (16 ms vs 30 us per step at H=16), and normally in a fresh interpreter.
    fork_safe = False

    def skip_reason(self, cell: str, params: Mapping[str, Any]) -> str | None:
        if cell not in _SUPPORTED:
            return f"PyTorch has no {cell} module to quantize; torch-int8 runs only {', '.join(_SUPPORTED)}"
        if _quantize_dynamic() is None:
            return f"torch {torch.__version__} does not provide torch.ao.quantization.quantize_dynamic"
        if not torch.backends.quantized.supported_engines:
            return f"torch {torch.__version__} has no quantized CPU engine"
        return None

    def prepare(
        self,
        weights: Weights,
        params: Mapping[str, Any],
        calibration: np.ndarray,
        threads: int = 1,
    ) -> Prepared:
        self.require_supported(weights.cell, params)
        module = torch_module(weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)  # quantized tensor creation is deprecated too
            # quantize_dynamic swaps submodules, so the RNN goes in a container and comes back out.
            quantized = _quantize_dynamic()(torch.nn.Sequential(module), {type(module)}, dtype=torch.qint8)[0]
        return TorchPrepared(quantized)


BACKEND = TorchInt8Backend()
