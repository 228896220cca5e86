"""The adding problem (Hochreiter & Schmidhuber 1997, in the form of Le et al. 2015).

Each of the T inputs is a pair (value, marker): values are uniform in [0, 1], and
exactly two markers are 1, one in each half of the sequence. The target is the sum
of the two marked values. Predicting the mean (1) scores an MSE of 1/6 ≈ 0.167, so
a cell has to carry the first marked value across at least T/2 steps to do better;
"solved" means a test MSE below 0.01.

Sequences are generated from a seed, so the data is unlimited and reproducible. The
test set depends only on T, so every model of a given T is scored on the same sequences.
"""

from __future__ import annotations

import numpy as np

from rnnbench.tasks.base import Regression, TaskData, TaskError

INPUT_SIZE = 2
TEST_ITEMS = 1000
TEST_SEED = 20150101  # independent of any model seed
DEFAULT_SEQ_LEN = 100


def make_batch(rng: np.random.Generator, batch: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """``batch`` adding-problem sequences: ``(x [T, B, 2] float32, targets [B] float32)``."""
    if seq_len < 2:
        raise TaskError(f"the adding problem needs T >= 2 (one marker per half), got {seq_len}")
    half = seq_len // 2
    values = rng.random((seq_len, batch), dtype=np.float32)
    first = rng.integers(0, half, batch)
    second = rng.integers(half, seq_len, batch)
    markers = np.zeros((seq_len, batch), np.float32)
    items = np.arange(batch)
    markers[first, items] = 1.0
    markers[second, items] = 1.0
    targets = values[first, items] + values[second, items]
    return np.stack([values, markers], axis=-1), targets


def load(seq_len: int | None = None) -> TaskData:
    """The adding problem at ``seq_len`` (default 100)."""
    seq_len = seq_len or DEFAULT_SEQ_LEN
    x_test, y_test = make_batch(np.random.default_rng([TEST_SEED, seq_len]), TEST_ITEMS, seq_len)
    return TaskData(
        tag="adding", seq_len=seq_len, input_size=INPUT_SIZE, objective=Regression(),
        x_test=x_test, y_test=y_test,
        sample=lambda rng, batch: make_batch(rng, batch, seq_len),
        default_steps=2000,
        description=f"adding problem, T={seq_len}, {TEST_ITEMS} test sequences",
    )
