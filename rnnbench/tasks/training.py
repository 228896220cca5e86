"""Training with a fixed budget: the same optimizer, steps and schedule for every cell.

Adam with a short linear warm-up and a cosine decay to zero, gradient-norm clipping
and fresh mini-batches drawn from the task's sampler with the model's seed. Every
``curve_every`` steps the mean training loss since the last point and the test metric
are recorded, so learning curves can be compared across cells. Runs on a CUDA device
when one is present, else on the CPU.
"""

from __future__ import annotations

import datetime as dt
import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import rnnbench
from rnnbench import env
from rnnbench.grid import Point
from rnnbench.tasks import checkpoints
from rnnbench.tasks.base import TaskData
from rnnbench.tasks.evaluate import evaluate_model
from rnnbench.tasks.model import TaskModel

CURVE_POINTS = 20  # learning-curve points per model when curve_every is not given


@dataclass(frozen=True)
class TrainConfig:
    """The training budget and optimizer, identical for every cell and recorded with each model."""

    steps: int
    batch_size: int = 64
    lr: float = 2e-3
    optimizer: str = "adam"
    schedule: str = "warmup-cosine"
    warmup_fraction: float = 0.05
    clip_norm: float = 1.0
    # Added to the LSTM's forget-gate bias at initialisation. 0 keeps PyTorch's
    # initialisation; 1 is Keras's ``unit_forget_bias`` (Jozefowicz et al. 2015), which
    # here neither solved the adding problem nor helped on digits (docs/tasks.md).
    lstm_forget_bias: float = 0.0
    curve_every: int = 0  # 0: steps / CURVE_POINTS
    warmup_steps: int = 0  # 0: warmup_fraction * steps
    # A CPU-time budget (None: none): training ends at the step that spends it, and the
    # cosine decays over these CPU seconds instead of over ``steps`` (then only a cap).
    max_cpu_s: float | None = None
    # Stop at the first curve point whose test metric is below this (None: never).
    stop_below: float | None = None

    @classmethod
    def for_task(cls, data: TaskData, steps: int | None = None, **options: Any) -> TrainConfig:
        """The budget for ``data``: the task's default number of steps unless ``steps`` is given."""
        return cls(steps=steps or data.default_steps, **options)

    @property
    def curve_interval(self) -> int:
        return self.curve_every or max(1, self.steps // CURVE_POINTS)

    def lr_factor(self, step: int, cpu_s: float = 0.0) -> float:
        """Multiplier of ``lr`` after ``step`` optimizer steps and ``cpu_s`` CPU seconds:
        linear warm-up, then cosine to 0 over the steps (or over ``max_cpu_s``)."""
        warmup = self.warmup_steps or max(1, round(self.warmup_fraction * self.steps))
        if step < warmup:
            return (step + 1) / warmup
        if self.max_cpu_s is not None:
            progress = cpu_s / max(self.max_cpu_s, 1e-9)
        else:
            progress = (step - warmup) / max(1, self.steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


@dataclass(frozen=True)
class CurvePoint:
    step: int
    train_loss: float  # mean over the steps since the previous curve point
    test_metric: float
    wall_s: float
    cpu_s: float


@dataclass
class Trained:
    model: TaskModel
    curve: list[CurvePoint] = field(default_factory=list)
    device: str = "cpu"

    @property
    def final(self) -> CurvePoint:
        return self.curve[-1]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def initial_model(data: TaskData, cell: str, hidden_size: int, seed: int,
                  config: TrainConfig) -> TaskModel:
    """The untrained model: the reference initialisation from ``seed``, plus the forget-gate bias."""
    model = TaskModel(cell, data.input_size, hidden_size, data.objective.outputs, seed)
    if cell == "lstm":
        with torch.no_grad():  # gate order i, f, g, o
            model.cell.bias_ih[hidden_size:2 * hidden_size] += config.lstm_forget_bias
    return model


def train(
    data: TaskData,
    cell: str,
    hidden_size: int,
    seed: int,
    config: TrainConfig,
    device: torch.device | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> Trained:
    """Train ``cell`` with a linear readout on ``data``; ``on_step(step, loss)`` after each step."""
    device = device or default_device()
    model = initial_model(data, cell, hidden_size, seed, config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    rng = np.random.default_rng([seed, 1])  # the training stream; model init uses the seed itself
    trained = Trained(model, device=str(device))
    losses: list[float] = []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for step in range(1, config.steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = config.lr * config.lr_factor(step - 1, time.process_time() - cpu0)
        x, y = data.sample(rng, config.batch_size)
        loss = data.objective.loss(model(torch.from_numpy(x).to(device)), torch.from_numpy(y).to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
        optimizer.step()
        losses.append(loss.item())
        if on_step:
            on_step(step, losses[-1])
        out_of_budget = config.max_cpu_s is not None and time.process_time() - cpu0 >= config.max_cpu_s
        if step % config.curve_interval == 0 or step == config.steps or out_of_budget:
            metric = evaluate_model(model, data)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            trained.curve.append(CurvePoint(step, float(np.mean(losses)), metric, wall, cpu))
            losses.clear()
            if out_of_budget or (config.stop_below is not None and metric < config.stop_below):
                break
    trained.model = model.cpu().eval()
    return trained


def sidecar(data: TaskData, cell: str, hidden_size: int, seed: int, config: TrainConfig,
            trained: Trained) -> dict[str, Any]:
    """What the JSON next to a checkpoint records: enough to rebuild, compare and trust it."""
    final = trained.final
    return {
        "task": data.tag, "data": data.description, "cell": cell, "seq_len": data.seq_len,
        "input_size": data.input_size, "hidden_size": hidden_size,
        "outputs": data.objective.outputs, "seed": seed, "steps": config.steps,
        "train": asdict(config), "device": trained.device, "threads": torch.get_num_threads(),
        "final": {"train_loss": final.train_loss, "metric": data.objective.metric,
                  "metric_value": final.test_metric, "n_eval": data.n_test},
        "train_wall_s": final.wall_s, "train_cpu_s": final.cpu_s,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "versions": {"rnnbench": rnnbench.__version__, "python": platform.python_version(),
                     **{k: v for k, v in env.library_versions().items() if v is not None},
                     "scikit-learn": _sklearn_version()},
        "git_commit": env.git_state()["git_commit"],
    }


def _sklearn_version() -> str | None:
    try:
        import sklearn
    except ImportError:
        return None
    return sklearn.__version__


def model_point(data: TaskData, cell: str, hidden_size: int, seed: int, batch_size: int) -> Point:
    """The identity of a trained model in results rows (backend ``torch``: the training framework)."""
    return Point.make(cell=cell, backend="torch", seq_len=data.seq_len, hidden_size=hidden_size,
                      input_size=data.input_size, batch_size=batch_size, seed=seed, task=data.tag)


def curve_rows(data: TaskData, cell: str, hidden_size: int, seed: int, config: TrainConfig,
               trained: Trained) -> list[dict[str, Any]]:
    """Learning-curve rows (``kind = "train_curve"``): training loss and test metric per curve point."""
    point = model_point(data, cell, hidden_size, seed, config.batch_size)
    rows = []
    for p in trained.curve:
        common = {**point.columns(), "kind": "train_curve", "status": "ok", "train_step": p.step,
                  "wall_time_s": p.wall_s, "cpu_time_s": p.cpu_s, **env.provenance()}
        rows.append({**common, "metric": "train_loss", "metric_value": p.train_loss})
        rows.append({**common, "metric": data.objective.metric, "metric_value": p.test_metric,
                     "n_eval": data.n_test})
    return rows


def train_and_save(data: TaskData, cell: str, hidden_size: int, seed: int, config: TrainConfig,
                   models_dir: Path, on_step: Callable[[int, float], None] | None = None,
                   ) -> tuple[Path, Trained]:
    """Train one model and write its checkpoint and sidecar; returns the checkpoint path."""
    trained = train(data, cell, hidden_size, seed, config, on_step=on_step)
    path = checkpoints.path_for(models_dir, data.tag, cell, data.seq_len, hidden_size, seed)
    checkpoints.save(path, trained.model, sidecar(data, cell, hidden_size, seed, config, trained))
    return path, trained
