"""TFHE-aware fine-tuning: train through the ``tfhe`` backend's own integers.

Under TFHE the cell runs at a few bits (``tfhe.act_bits``, ``tfhe.weight_bits``): states,
gates and pre-activations are rounded and saturated at every step, so the encrypted model
is the *integer model* of :mod:`rnnbench.backends.tfhe.scheme`, not the trained one. At
the default widths that costs the trained digits models 50-75 points.

Fine-tuning here is quantization-aware training with a straight-through estimator at the
state: each step's forward value is the integer reference's state (the very integers the
encrypted circuit decrypts to, computed by the same code), and its gradient is the float
cell's. The readout learns the integer model's features and the cell's weights move to
where the integer model is accurate. The quantization (scales, calibrated sites) is
refitted to the moving weights every ``requantize_every`` steps, on the calibration inputs
the backend itself uses, so the backend scoring the saved model quantizes it exactly as
at the end of training.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnbench.backends.tfhe import BACKEND, scheme
from rnnbench.cells import Weights
from rnnbench.tasks.base import TaskData
from rnnbench.tasks.evaluate import evaluate_model
from rnnbench.tasks.model import TaskModel
from rnnbench.tasks.training import TrainConfig


def quantized(model: TaskModel, data: TaskData, settings: Mapping[str, Any]) -> scheme.TfheCell:
    """The integer cell the ``tfhe`` backend makes of ``model`` (same calibration inputs)."""
    # evaluate_backend calibrates on max(n_eval, 512) training sequences: these, up to 512 items.
    calibration = data.calibration(BACKEND.calibration_sequences)
    return scheme.quantize(Weights.from_module(model.cell), calibration, settings["weight_bits"],
                           settings["act_bits"], settings["form"])


def integer_metric(model: TaskModel, data: TaskData, qc: scheme.TfheCell) -> float:
    """The test metric of the integer model (what ``tfhe`` decrypts, in the clear)."""
    hidden = scheme.dequantize(scheme.run_reference(qc, data.x_test), qc)[-1]
    return data.objective.score(data.objective.predictions(model.readout_numpy(hidden)), data.y_test)


def snapped_logits(model: TaskModel, qc: scheme.TfheCell, x: np.ndarray) -> torch.Tensor:
    """Logits of ``x`` [T, B, I]: integer reference values forward, float cell gradients back."""
    targets: Iterator[tuple[np.ndarray, ...]] = iter(scheme.trajectory(qc, x))
    lstm = model.cell.cell == "lstm"

    def snap(state):
        parts = state if lstm else (state,)
        snapped = tuple(p + (torch.from_numpy(t) - p).detach()
                        for p, t in zip(parts, next(targets), strict=True))
        return snapped if lstm else snapped[0]

    xq = scheme.quantize_inputs(x, qc).astype(np.float32) * np.float32(2.0**-qc.frac_x)
    outputs, _ = model.cell(torch.from_numpy(xq), store=snap)
    return model.readout(outputs[-1])


@dataclass
class FineTuned:
    model: TaskModel
    settings: dict[str, Any]
    steps: int
    metrics: dict[str, float] = field(default_factory=dict)

    def columns(self) -> dict[str, Any]:
        """What the ``train`` command's table shows of this fine-tuning."""
        return {"steps": self.steps, **{k: round(v, 4) for k, v in self.metrics.items()}}


def finetune(model: TaskModel, data: TaskData, params: Mapping[str, Any] | None = None,
             steps: int = 1000, lr: float = 2e-3, batch_size: int = 64, seed: int = 0,
             requantize_every: int = 5) -> FineTuned:
    """Fine-tune a copy of ``model`` through the integer model of the ``tfhe`` settings ``params``.

    Adam with the project's warm-up/cosine schedule; gradients clipped as in training.
    """
    settings = BACKEND.validate_params(params or {})
    tuned = copy.deepcopy(model).train()
    config = TrainConfig(steps=steps, lr=lr, batch_size=batch_size)
    optimizer = torch.optim.Adam(tuned.parameters(), lr=lr)
    rng = np.random.default_rng([seed, 3])
    metrics = {"exact_before": evaluate_model(model, data),
               "tfhe_before": integer_metric(model, data, quantized(model, data, settings))}
    for step in range(steps):
        if step % requantize_every == 0:
            qc = quantized(tuned, data, settings)
        for group in optimizer.param_groups:
            group["lr"] = lr * config.lr_factor(step)
        x, y = data.sample(rng, batch_size)
        loss = data.objective.loss(snapped_logits(tuned, qc, x), torch.from_numpy(y))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tuned.parameters(), config.clip_norm)
        optimizer.step()
    tuned.eval()
    metrics["tfhe_after"] = integer_metric(tuned, data, quantized(tuned, data, settings))
    metrics["exact_after"] = evaluate_model(tuned, data)
    return FineTuned(tuned, settings, steps, metrics)


def finetune_checkpoint(checkpoint: Path, data: TaskData, out_dir: Path,
                        params: Mapping[str, Any] | None = None, steps: int = 1000, lr: float = 2e-3,
                        seed: int = 0) -> tuple[Path, FineTuned]:
    """Fine-tune a saved model for ``tfhe`` and save it under ``out_dir`` with the same file name.

    The sidecar says it is TFHE-aware, from which checkpoint, and for which widths.
    """
    from rnnbench import env
    from rnnbench.tasks import checkpoints

    model, meta = checkpoints.load(checkpoint)
    result = finetune(model, data, params, steps=steps, lr=lr, seed=seed)
    target = Path(out_dir) / checkpoint.name
    tuned_for = {k: result.settings[k] for k in ("weight_bits", "act_bits", "form")}
    sidecar = {**meta, "activations": "tfhe",
               "finetune": {"from": str(checkpoint), "steps": result.steps, "lr": lr,
                            "tfhe_params": tuned_for, "metric_values": result.metrics},
               "git_commit": env.git_state()["git_commit"]}
    sidecar["final"] = {**meta["final"], "metric_value": result.metrics["exact_after"]}
    checkpoints.save(target, result.model, sidecar)
    return target, result
