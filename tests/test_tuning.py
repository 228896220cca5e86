"""The tuning grid gives every cell the same budget; the best trial and the longest T solved."""

from __future__ import annotations

import json
import math
from dataclasses import replace

from rnnbench import tasks
from rnnbench.results import store
from rnnbench.tasks import tuning
from rnnbench.tasks.training import TrainConfig, train


def _trial(cell, solved_at, mse, seq_len=100):
    return tuning.Trial(cell, seq_len, TrainConfig(steps=10), mse, solved_at, 100.0, 1.0)


def test_every_cell_gets_the_learning_rate_grid_and_the_lstm_also_its_forget_bias():
    base = TrainConfig(steps=10)
    assert [c.lr for c in tuning.grid("gru", base)] == list(tuning.LR_GRID)
    lstm = tuning.grid("lstm", base)
    assert len(lstm) == len(tuning.LR_GRID) * len(tuning.LSTM_FORGET_BIAS_GRID)
    assert {(c.lr, c.lstm_forget_bias) for c in lstm} == {
        (lr, b) for lr in tuning.LR_GRID for b in tuning.LSTM_FORGET_BIAS_GRID}
    assert {c.steps for c in lstm} == {10}


def test_best_prefers_solved_earliest_then_lowest_mse():
    late, early, close, far = (_trial("gru", 50.0, 0.005), _trial("gru", 20.0, 0.008),
                               _trial("gru", None, 0.02), _trial("gru", None, 0.1))
    assert tuning.best([far, late, close, early]) is early
    assert tuning.best([far, close]) is close


class _Seen:
    def __init__(self):
        self.starts, self.steps, self.trials = [], [], []

    def started(self, cell, seq_len, config):
        self.starts.append((cell, seq_len, config.lr))

    def step(self, step, loss):
        self.steps.append(step)

    def finished(self, trial):
        self.trials.append(trial)


def test_tune_and_longest_solved_train_for_real():
    data = tasks.load("adding", 8)
    seen = _Seen()
    trials = tuning.tune(data, "reluadd", 4, 0, TrainConfig(steps=4, batch_size=8, curve_every=2),
                         progress=seen, lrs=(1e-3, 1e-2))
    assert seen.trials == trials and seen.steps == [1, 2, 3, 4] * 2
    assert seen.starts == [("reluadd", 8, 1e-3), ("reluadd", 8, 1e-2)]
    assert [t.config.lr for t in trials] == [1e-3, 1e-2]
    assert all(t.final_mse > 0 and t.cpu_s > 0 and t.steps_per_s > 0 for t in trials)
    # An impossible budget: nothing is solved and the search stops at the first T.
    longest, run = tuning.longest_solved(lambda t: tasks.load("adding", t),
                                         {"gru": TrainConfig(steps=2, batch_size=8)}, 4, 0,
                                         seq_lens=(8, 16), budget_cpu_s=0.0)
    assert longest == {"gru": None} and [t.seq_len for t in run] == [8]


def test_a_budgeted_run_trains_past_its_step_count_until_the_cpu_budget_is_spent():
    data = tasks.load("adding", 8)
    config = tuning.budgeted(TrainConfig(steps=4, batch_size=8, curve_every=2), budget_cpu_s=0.5)
    assert (config.warmup_steps, config.curve_every, config.stop_below) == (1, 2, tuning.ADDING_SOLVED_MSE)
    final = train(data, "reluadd", 4, 0, replace(config, stop_below=None)).final
    assert final.step > 4 and final.cpu_s >= 0.5  # the 4 steps of the base config did not end it


def test_a_run_stops_at_the_first_curve_point_below_the_target():
    data = tasks.load("adding", 8)
    easy = replace(TrainConfig(steps=50, batch_size=8, curve_every=5), stop_below=10.0)
    trained = train(data, "gru", 4, 0, easy)
    assert [p.step for p in trained.curve] == [5]


def test_the_cosine_follows_the_cpu_budget_when_there_is_one():
    config = TrainConfig(steps=100, warmup_steps=10, max_cpu_s=60.0)
    assert config.lr_factor(5) == 0.6  # warm-up counts steps
    assert config.lr_factor(10_000, cpu_s=0.0) == 1.0
    assert abs(config.lr_factor(10_000, cpu_s=30.0) - 0.5) < 1e-12
    assert config.lr_factor(10, cpu_s=60.0) == 0.0


def test_trial_rows_are_tidy_and_carry_the_setting():
    config = tuning.budgeted(TrainConfig(steps=10, lr=5e-3, lstm_forget_bias=1.0), 900.0)
    t = tuning.Trial("lstm", 100, config, 0.2, None, 900.5, 40.0, 36000, 1800.0)
    rows = tuning.trial_rows(t, 64, 0, 2, 1, "longest_t")
    assert {r["metric"] for r in rows} == {"test_mse", "solved_at_cpu_s", "steps_per_cpu_s"}
    assert all(r["kind"] == "tune" and r["train_step"] == 36000 and r["cpu_time_s"] == 900.5 for r in rows)
    assert json.loads(rows[0]["backend_params"]) == {"stage": "longest_t", "lr": 5e-3,
                                                     "lstm_forget_bias": 1.0, "budget_cpu_s": 900.0}
    solved = next(r for r in rows if r["metric"] == "solved_at_cpu_s")
    assert math.isnan(solved["metric_value"])
    store.rows_to_table(rows)  # every column is in the schema
