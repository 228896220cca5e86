"""The same small tuning budget for every cell, and the longest sequence each one solves.

An untuned baseline is a strawman too: :func:`tune` trains a cell once per point of a small
grid (three peak learning rates; for the LSTM, also the forget-gate bias at initialisation)
and keeps the best. :func:`longest_solved` then trains the best setting at growing ``T``
and reports the longest ``T`` solved within a CPU-time budget.

"Solved" is the adding problem's: a test MSE below :data:`ADDING_SOLVED_MSE` (predicting
the mean scores 0.167). CPU time is the training process's, read from the learning curve,
so a busy machine stretches the wall time but not the budget. In the longest-``T`` search
each run trains until it is solved or has spent the budget (:func:`budgeted`), never for
a fixed number of steps that could end first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from rnnbench import env
from rnnbench.grid import Point
from rnnbench.tasks.base import TaskData
from rnnbench.tasks.training import TrainConfig, Trained, train

ADDING_SOLVED_MSE = 0.01
LR_GRID = (1e-3, 2e-3, 5e-3)
LSTM_FORGET_BIAS_GRID = (0.0, 1.0)
SOLVE_BUDGET_CPU_S = 15 * 60.0


@dataclass(frozen=True)
class Trial:
    """One trained setting: its configuration and what it reached."""

    cell: str
    seq_len: int
    config: TrainConfig
    final_mse: float
    solved_at_cpu_s: float | None  # CPU seconds at the first curve point below the threshold
    cpu_s: float
    steps_per_s: float  # optimizer steps per CPU second, test evaluations included
    steps: int = 0  # optimizer steps taken
    wall_s: float = 0.0

    def solved_within(self, budget_cpu_s: float) -> bool:
        return self.solved_at_cpu_s is not None and self.solved_at_cpu_s <= budget_cpu_s


class TuningProgress(Protocol):
    """What a display learns of a tuning run: each training's start, steps and end."""

    def started(self, cell: str, seq_len: int, config: TrainConfig) -> None: ...
    def step(self, step: int, loss: float) -> None: ...
    def finished(self, trial: Trial) -> None: ...


def trial(data: TaskData, cell: str, trained: Trained, config: TrainConfig) -> Trial:
    """Summarise one training run on the adding problem."""
    solved = next((p.cpu_s for p in trained.curve if p.test_metric < ADDING_SOLVED_MSE), None)
    final = trained.final
    return Trial(cell, data.seq_len, config, final.test_metric, solved, final.cpu_s,
                 final.step / max(final.cpu_s, 1e-9), final.step, final.wall_s)


def budgeted(config: TrainConfig, budget_cpu_s: float) -> TrainConfig:
    """``config`` run until solved or ``budget_cpu_s`` CPU seconds are spent: the same peak
    learning rate, warm-up steps and curve interval, the cosine stretched over the budget."""
    return replace(config, steps=2**62, warmup_steps=config.warmup_steps or
                   max(1, round(config.warmup_fraction * config.steps)),
                   curve_every=config.curve_interval, max_cpu_s=budget_cpu_s,
                   stop_below=ADDING_SOLVED_MSE)


def grid(cell: str, base: TrainConfig, lrs: Sequence[float] = LR_GRID,
         forget_biases: Sequence[float] = LSTM_FORGET_BIAS_GRID) -> list[TrainConfig]:
    """The settings tried for ``cell``: every learning rate, and for the LSTM every forget-gate bias."""
    biases = forget_biases if cell == "lstm" else (base.lstm_forget_bias,)
    return [replace(base, lr=lr, lstm_forget_bias=b) for b in biases for lr in lrs]


def best(trials: Sequence[Trial]) -> Trial:
    """Solved earliest (in CPU time) wins; among the unsolved, the lowest final MSE."""
    return min(trials, key=lambda t: (t.solved_at_cpu_s is None,
                                      t.solved_at_cpu_s or 0.0, t.final_mse))


def run_trial(data: TaskData, cell: str, hidden_size: int, seed: int, config: TrainConfig,
              progress: TuningProgress | None = None) -> Trial:
    """Train ``cell`` on ``data`` with ``config`` and summarise it, reporting to ``progress``."""
    if progress:
        progress.started(cell, data.seq_len, config)
    trained = train(data, cell, hidden_size, seed, config, on_step=progress.step if progress else None)
    result = trial(data, cell, trained, config)
    if progress:
        progress.finished(result)
    return result


def tune(data: TaskData, cell: str, hidden_size: int, seed: int, base: TrainConfig,
         progress: TuningProgress | None = None, **grid_options) -> list[Trial]:
    """Train ``cell`` once per setting of :func:`grid`; returns every trial (see :func:`best`)."""
    return [run_trial(data, cell, hidden_size, seed, config, progress)
            for config in grid(cell, base, **grid_options)]


def longest_solved(load: Callable[[int], TaskData], configs: Mapping[str, TrainConfig],
                   hidden_size: int, seed: int, seq_lens: Sequence[int] = (100, 200, 400, 800),
                   budget_cpu_s: float = SOLVE_BUDGET_CPU_S,
                   progress: TuningProgress | None = None,
                   ) -> tuple[dict[str, int | None], list[Trial]]:
    """Per cell of ``configs`` (cell -> its tuned setting), the longest ``T`` of ``seq_lens``
    (ascending) solved within the budget; and the trials run.

    Every cell trains at one ``T`` before any trains at the next, so a search cut short
    still compares the cells at the same lengths; a cell stops at its first ``T`` not solved.
    Each run is :func:`budgeted`: it trains until solved or out of CPU time.
    """
    longest: dict[str, int | None] = dict.fromkeys(configs)
    searching, trials = list(configs), []
    for seq_len in seq_lens:
        data = load(seq_len)
        for cell in list(searching):
            trials.append(run_trial(data, cell, hidden_size, seed,
                                    budgeted(configs[cell], budget_cpu_s), progress))
            if trials[-1].solved_within(budget_cpu_s):
                longest[cell] = seq_len
            else:
                searching.remove(cell)
    return longest, trials


def trial_rows(trial: Trial, hidden_size: int, seed: int, input_size: int, threads: int,
               stage: str) -> list[dict[str, Any]]:
    """Tidy results rows (``kind = "tune"``) of one trial: its final test MSE, the CPU seconds
    at which it was solved (NaN: not solved) and its steps per CPU second. ``stage`` is
    ``grid`` (the tuning grid) or ``longest_t`` (a budgeted run of the search for the longest T);
    the setting (learning rate, forget bias, budget) is in ``backend_params``."""
    config = trial.config
    params = {"stage": stage, "lr": config.lr}
    if trial.cell == "lstm":
        params["lstm_forget_bias"] = config.lstm_forget_bias
    if config.max_cpu_s is not None:
        params["budget_cpu_s"] = config.max_cpu_s
    else:
        params["steps"] = config.steps
    point = Point.make(params, cell=trial.cell, backend="torch", seq_len=trial.seq_len,
                       hidden_size=hidden_size, input_size=input_size, batch_size=config.batch_size,
                       threads=threads, seed=seed, task="adding")
    common = {**point.columns(), "kind": "tune", "status": "ok", "train_step": trial.steps,
              "wall_time_s": trial.wall_s, "cpu_time_s": trial.cpu_s, **env.provenance()}
    solved = math.nan if trial.solved_at_cpu_s is None else trial.solved_at_cpu_s
    return [{**common, "metric": "test_mse", "metric_value": trial.final_mse},
            {**common, "metric": "solved_at_cpu_s", "metric_value": solved},
            {**common, "metric": "steps_per_cpu_s", "metric_value": trial.steps_per_s}]
