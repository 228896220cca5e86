"""``onnxruntime``: GRU and LSTM exported to ONNX and run by ONNX Runtime.

The fastest GRU/LSTM a CPU user can pick off the shelf. The model is exported from
``torch.nn.GRU``/``torch.nn.LSTM`` (ONNX's GRU/LSTM operators, PyTorch semantics)
with the point's sequence length and batch size. ONNX has no reluadd operator, so
reluadd is skipped rather than silently dropped.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from rnnbench.backends.base import Backend, Prepared
from rnnbench.backends.pytorch import torch_module
from rnnbench.cells import Weights

_SUPPORTED = ("gru", "lstm")


def export_onnx(weights: Weights, example: np.ndarray) -> bytes:
    """Serialized ONNX model of ``nn.GRU``/``nn.LSTM`` holding ``weights``, input ``x`` [T, B, I]."""
    module = torch_module(weights)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module, (torch.from_numpy(example),), buffer,
            input_names=["x"], output_names=["y"], dynamo=False,
        )
    return buffer.getvalue()


class OrtPrepared(Prepared):
    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(["y"], {"x": x})[0]


class OrtBackend(Backend):
    name = "onnxruntime"
    description = "ONNX Runtime's GRU/LSTM operators (CPU execution provider)"

    def skip_reason(self, cell: str, params: Mapping[str, Any]) -> str | None:
        if cell not in _SUPPORTED:
            return f"ONNX has no {cell} operator; onnxruntime runs only {', '.join(_SUPPORTED)}"
        return None

    def prepare(
        self,
        weights: Weights,
        params: Mapping[str, Any],
        calibration: np.ndarray,
        threads: int = 1,
    ) -> Prepared:
        self.require_supported(weights.cell, params)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(
            export_onnx(weights, calibration), options, providers=["CPUExecutionProvider"]
        )
        return OrtPrepared(session)


BACKEND = OrtBackend()
