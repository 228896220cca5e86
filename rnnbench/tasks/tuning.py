"""The same small tuning budget for every cell, and the longest sequence each one solves.

An untuned baseline is a strawman too: :func:`tune` trains a cell once per point of a small
grid (three peak learning rates; for the LSTM, also the forget-gate bias at initialisation)
and keeps the best. :func:`longest_solved` then trains the best setting at growing ``T``
and reports the longest ``T`` solved within a CPU-time budget.

"Solved" is the adding problem's: a test MSE below :data:`ADDING_SOLVED_MSE` (predicting
the mean scores 0.167). CPU time is the training process's, read from the learning curve,
so a busy machine stretches the wall time but not the budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

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

    def solved_within(self, budget_cpu_s: float) -> bool:
        return self.solved_at_cpu_s is not None and self.solved_at_cpu_s <= budget_cpu_s


def trial(data: TaskData, cell: str, trained: Trained, config: TrainConfig) -> Trial:
    """Summarise one training run on the adding problem."""
    solved = next((p.cpu_s for p in trained.curve if p.test_metric < ADDING_SOLVED_MSE), None)
    final = trained.final
    return Trial(cell, data.seq_len, config, final.test_metric, solved, final.cpu_s,
                 final.step / max(final.cpu_s, 1e-9))


def grid(cell: str, base: TrainConfig, lrs: Sequence[float] = LR_GRID,
         forget_biases: Sequence[float] = LSTM_FORGET_BIAS_GRID) -> list[TrainConfig]:
    """The settings tried for ``cell``: every learning rate, and for the LSTM every forget-gate bias."""
    biases = forget_biases if cell == "lstm" else (base.lstm_forget_bias,)
    return [replace(base, lr=lr, lstm_forget_bias=b) for b in biases for lr in lrs]


def best(trials: Sequence[Trial]) -> Trial:
    """Solved earliest (in CPU time) wins; among the unsolved, the lowest final MSE."""
    return min(trials, key=lambda t: (t.solved_at_cpu_s is None,
                                      t.solved_at_cpu_s or 0.0, t.final_mse))


def tune(data: TaskData, cell: str, hidden_size: int, seed: int, base: TrainConfig,
         on_trial: Callable[[Trial], None] | None = None, **grid_options) -> list[Trial]:
    """Train ``cell`` once per setting of :func:`grid`; returns every trial (see :func:`best`)."""
    trials = []
    for config in grid(cell, base, **grid_options):
        trials.append(trial(data, cell, train(data, cell, hidden_size, seed, config), config))
        if on_trial:
            on_trial(trials[-1])
    return trials


def longest_solved(load: Callable[[int], TaskData], cell: str, hidden_size: int, seed: int,
                   config: TrainConfig, seq_lens: Sequence[int] = (100, 200, 400, 800),
                   budget_cpu_s: float = SOLVE_BUDGET_CPU_S,
                   on_trial: Callable[[Trial], None] | None = None) -> tuple[int | None, list[Trial]]:
    """The longest ``T`` of ``seq_lens`` (ascending) solved within the budget, stopping at the
    first that is not; and the trials run."""
    longest, trials = None, []
    for seq_len in seq_lens:
        data = load(seq_len)
        trials.append(trial(data, cell, train(data, cell, hidden_size, seed, config), config))
        if on_trial:
            on_trial(trials[-1])
        if not trials[-1].solved_within(budget_cpu_s):
            break
        longest = seq_len
    return longest, trials
