"""The tuning grid gives every cell the same budget; the best trial and the longest T solved."""

from __future__ import annotations

from rnnbench import tasks
from rnnbench.tasks import tuning
from rnnbench.tasks.training import TrainConfig


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


def test_tune_and_longest_solved_train_for_real():
    data = tasks.load("adding", 8)
    seen = []
    trials = tuning.tune(data, "reluadd", 4, 0, TrainConfig(steps=4, batch_size=8, curve_every=2),
                         on_trial=seen.append, lrs=(1e-3, 1e-2))
    assert seen == trials and [t.config.lr for t in trials] == [1e-3, 1e-2]
    assert all(t.final_mse > 0 and t.cpu_s > 0 and t.steps_per_s > 0 for t in trials)
    # An impossible budget: nothing is solved and the search stops at the first T.
    longest, run = tuning.longest_solved(lambda t: tasks.load("adding", t),
                                         {"gru": TrainConfig(steps=2, batch_size=8)}, 4, 0,
                                         seq_lens=(8, 16), budget_cpu_s=0.0)
    assert longest == {"gru": None} and [t.seq_len for t in run] == [8]
