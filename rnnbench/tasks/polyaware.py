"""Polynomial-aware fine-tuning: train with the CKKS backend's own polynomials in place.

Under CKKS every sigmoid, tanh and relu is a polynomial on a calibrated interval, so the
encrypted model is the *plaintext polynomial model*, not the trained one. Fine-tuning a
trained checkpoint with exactly those polynomials (same fit, degree, interval and
Paterson-Stockmeyer evaluation, through :meth:`rnnbench.backends.ckks.poly.Poly.evaluate`
on torch tensors) makes the polynomial model the model that was trained.

The intervals come from the backend's calibration of the *current* weights, so they move
while the weights do: the stand-ins are refitted every ``refit_every`` steps, and at the
end training continues in short phases until the backend's calibration of the final
weights yields the very stand-ins of the last phase (``polys_match`` in the sidecar).
The CKKS backend, calibrating the saved model as it always does, then evaluates exactly
the polynomials it was trained with. During training only, inputs are clamped to their
interval (a polynomial explodes outside it, and one wild gradient would undo the model);
the calibration margin keeps such inputs rare, and the backend records their fraction
(``ckks_out_of_range_frac``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnbench.cells import Weights
from rnnbench.cells.equations import NonlinearityOps
from rnnbench.cells.reference import TorchOps
from rnnbench.tasks.base import TaskData
from rnnbench.tasks.evaluate import evaluate_model
from rnnbench.tasks.model import TaskModel
from rnnbench.tasks.training import TrainConfig

ACTIVATIONS = ("exact", "ckks")


class PolyTorchOps(NonlinearityOps):
    """The cell's ``ops`` on torch tensors with the CKKS stand-ins; ``clamp``: inputs clamped to
    their intervals (training only: the encrypted evaluation cannot clamp)."""

    def __init__(self, stand_ins: Mapping[str, Any], clamp: bool = False) -> None:
        self.stand_ins, self.clamp = dict(stand_ins), clamp

    def apply(self, kind: str, x: torch.Tensor) -> torch.Tensor:
        p = self.stand_ins[kind]
        return p.evaluate(x.clamp(-p.half_width, p.half_width) if self.clamp else x)


def ckks_stand_ins(model: TaskModel, data: TaskData, params: Mapping[str, Any] | None = None,
                   n_eval: int = 256) -> dict[str, Any]:
    """The stand-ins the ``ckks`` backend fits for ``model`` scoring the first ``n_eval`` test items."""
    from rnnbench.backends.ckks import BACKEND
    from rnnbench.backends.ckks import params as ckks_params

    settings = BACKEND.validate_params(params or {})
    calibration = data.calibration(max(n_eval, BACKEND.calibration_sequences))
    return ckks_params.stand_ins(Weights.from_module(model.cell), settings, calibration)


def polynomial_metric(model: TaskModel, data: TaskData, stand_ins: Mapping[str, Any]) -> float:
    """The test metric of ``model`` with ``stand_ins`` in place of its nonlinearities (plaintext)."""
    saved = model.cell.ops
    model.cell.ops = PolyTorchOps(stand_ins)
    try:
        return evaluate_model(model, data)
    finally:
        model.cell.ops = saved


@dataclass
class FineTuned:
    model: TaskModel
    stand_ins: dict[str, Any]
    polys_match: bool  # the backend's calibration of the final weights gives ``stand_ins``
    steps: int  # optimizer steps taken (the budget plus the settling phases)
    metrics: dict[str, float] = field(default_factory=dict)

    def columns(self) -> dict[str, Any]:
        """What the ``train`` command's table shows of this fine-tuning."""
        return {"steps": self.steps, **{k: round(v, 4) for k, v in self.metrics.items()},
                "polys_match": self.polys_match}


def finetune(model: TaskModel, data: TaskData, params: Mapping[str, Any] | None = None,
             steps: int = 400, lr: float = 5e-4, batch_size: int = 64, seed: int = 0,
             refit_every: int = 50, settle_phases: int = 4, n_eval: int = 256) -> FineTuned:
    """Fine-tune a copy of ``model`` with the CKKS stand-ins of ``params`` in place of its nonlinearities.

    Adam with the project's warm-up/cosine schedule over ``steps``, then up to
    ``settle_phases`` phases of ``refit_every`` steps at the final rate (a tenth of
    ``lr``) until the stand-ins stop moving.
    """
    tuned = copy.deepcopy(model).train()
    config = TrainConfig(steps=steps, lr=lr, batch_size=batch_size)
    optimizer = torch.optim.Adam(tuned.parameters(), lr=lr)
    rng = np.random.default_rng([seed, 2])
    before = ckks_stand_ins(model, data, params, n_eval)
    metrics = {"exact_before": evaluate_model(model, data),
               "poly_before": polynomial_metric(model, data, before)}

    def run(count: int, rate) -> None:
        for step in range(count):
            for group in optimizer.param_groups:
                group["lr"] = rate(step)
            x, y = data.sample(rng, batch_size)
            loss = data.objective.loss(tuned(torch.from_numpy(x)), torch.from_numpy(y))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(tuned.parameters(), config.clip_norm)
            optimizer.step()

    stand_ins, taken = before, 0
    for start in range(0, steps, refit_every):
        stand_ins = ckks_stand_ins(tuned, data, params, n_eval)
        tuned.cell.ops = PolyTorchOps(stand_ins, clamp=True)
        count = min(refit_every, steps - start)
        run(count, lambda step, start=start: lr * config.lr_factor(start + step))
        taken += count
    final = ckks_stand_ins(tuned, data, params, n_eval)
    for _ in range(settle_phases):
        if final == stand_ins:
            break
        stand_ins = final
        tuned.cell.ops = PolyTorchOps(stand_ins, clamp=True)
        run(refit_every, lambda step: 0.1 * lr)
        taken += refit_every
        final = ckks_stand_ins(tuned, data, params, n_eval)
    tuned.cell.ops = TorchOps
    tuned.eval()
    metrics["poly_after"] = polynomial_metric(tuned, data, final)
    metrics["exact_after"] = evaluate_model(tuned, data)
    return FineTuned(tuned, final, final == stand_ins, taken, metrics)


def sidecar_entry(result: FineTuned, params: Mapping[str, Any] | None, base: str,
                  lr: float) -> dict[str, Any]:
    """What a fine-tuned checkpoint's sidecar adds: that it is polynomial-aware, with which polynomials."""
    return {
        "activations": "ckks",
        "finetune": {"from": base, "steps": result.steps, "lr": lr, "ckks_params": dict(params or {}),
                     "polys_match": result.polys_match, "metric_values": result.metrics},
        "polys": {kind: p.describe() for kind, p in result.stand_ins.items()},
    }


def finetune_checkpoint(checkpoint: Path, data: TaskData, out_dir: Path,
                        params: Mapping[str, Any] | None = None, steps: int = 400, lr: float = 5e-4,
                        seed: int = 0) -> tuple[Path, FineTuned]:
    """Fine-tune a saved model for ``ckks`` and save it under ``out_dir`` with the same file name.

    Keeping the name lets a sweep score it like any model (``--models out_dir``); the
    sidecar says it is polynomial-aware, from which checkpoint, and with which polynomials.
    """
    from rnnbench import env
    from rnnbench.tasks import checkpoints

    model, meta = checkpoints.load(checkpoint)
    result = finetune(model, data, params, steps=steps, lr=lr, seed=seed)
    target = Path(out_dir) / checkpoint.name
    sidecar = {**meta, **sidecar_entry(result, params, str(checkpoint), lr),
               "git_commit": env.git_state()["git_commit"]}
    sidecar["final"] = {**meta["final"], "metric_value": result.metrics["exact_after"]}
    checkpoints.save(target, result.model, sidecar)
    return target, result
