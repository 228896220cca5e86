"""Training many models in turn: the models an accuracy sweep lacks, or ``rnnbench train``'s list.

The display is the caller's: :class:`TrainingProgress` receives each model's start, its
steps with the loss, and its result line, so this module knows nothing of the terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rnnbench.tasks import checkpoints

if TYPE_CHECKING:
    from rnnbench.grid import Point
    from rnnbench.tasks.base import TaskData
    from rnnbench.tasks.training import TrainConfig, Trained


@dataclass(frozen=True, eq=False)
class Job:
    """One model to train: a cell of one hidden size and seed on one task at one length."""

    data: TaskData
    cell: str
    hidden: int
    seed: int

    @property
    def label(self) -> str:
        return f"train {self.data.tag} {self.cell} T={self.data.seq_len} H={self.hidden} seed={self.seed}"


class TrainingProgress(Protocol):
    def started(self, job: Job, steps: int) -> None: ...
    def step(self, job: Job, step: int, loss: float) -> None: ...
    def finished(self, job: Job, result: str) -> None: ...


def train_models(
    jobs: Sequence[Job],
    config_for: Callable[[TaskData], TrainConfig],
    models_dir: Path,
    progress: TrainingProgress | None = None,
    on_trained: Callable[[Job, TrainConfig, Path, Trained], None] | None = None,
) -> None:
    """Train and save each job (``config_for(data)`` gives its budget), reporting to ``progress``.

    ``on_trained(job, config, checkpoint, trained)`` runs after each model is saved, so a
    caller records it before the next starts (an interruption keeps the finished ones).
    """
    from rnnbench.tasks import training

    for job in jobs:
        config = config_for(job.data)
        if progress:
            progress.started(job, config.steps)

        def on_step(step: int, loss: float, job: Job = job) -> None:
            if progress:
                progress.step(job, step, loss)

        checkpoint, trained = training.train_and_save(job.data, job.cell, job.hidden, job.seed,
                                                      config, models_dir, on_step=on_step)
        if progress:
            progress.finished(job, f"{job.label} test {job.data.objective.metric} "
                                   f"{trained.final.test_metric:.4g} "
                                   f"({trained.final.cpu_s:.0f} s CPU) -> {checkpoint}")
        if on_trained:
            on_trained(job, config, checkpoint, trained)


def missing_models(points: Sequence[Point], datasets: Sequence[TaskData], models_dir: Path) -> list[Job]:
    """The models the accuracy ``points`` need that ``models_dir`` lacks, each once."""
    by_key = {(d.tag, d.seq_len): d for d in datasets}
    jobs: dict[tuple, Job] = {}
    for p in points:
        key = (p.task, p.seq_len, p.cell, p.hidden_size, p.seed)
        path = checkpoints.path_for(models_dir, p.task, p.cell, p.seq_len, p.hidden_size, p.seed)
        if key not in jobs and not checkpoints.sidecar_path(path).exists():
            jobs[key] = Job(by_key[(p.task, p.seq_len)], p.cell, p.hidden_size, p.seed)
    return list(jobs.values())
