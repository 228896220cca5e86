"""What every task provides: a test set, a stream of training batches and an objective.

A task reads sequences ``x`` [T, B, I] and is scored on the final hidden state only
(through a linear readout), so the same trained model can be evaluated by any backend
that returns hidden states.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


class TaskError(ValueError):
    """A task that cannot be set up as asked (bad sequence length, unreadable data file)."""


class Objective:
    """How a task's readout outputs are trained, turned into predictions and scored."""

    metric: str = ""
    outputs: int = 1

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def predictions(self, logits: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score(self, predictions: np.ndarray, targets: np.ndarray) -> float:
        raise NotImplementedError

    def agreement(self, predictions: np.ndarray, reference: np.ndarray) -> float:
        """Fraction of predictions that match the float reference model's predictions."""
        raise NotImplementedError


class Regression(Objective):
    """One real output, mean squared error.

    Agreement counts predictions within :attr:`tolerance` of the reference prediction:
    0.04 is well inside the 0.1 root-mean-square error that "solved" (MSE < 0.01) allows.
    """

    metric = "mse"
    outputs = 1
    tolerance = 0.04

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(logits[:, 0], targets)

    def predictions(self, logits: np.ndarray) -> np.ndarray:
        return np.asarray(logits)[:, 0]

    def score(self, predictions: np.ndarray, targets: np.ndarray) -> float:
        return float(np.mean((np.asarray(predictions, np.float64) - targets) ** 2))

    def agreement(self, predictions: np.ndarray, reference: np.ndarray) -> float:
        return float(np.mean(np.abs(predictions - reference) <= self.tolerance))


class Classification(Objective):
    """``outputs`` classes, cross-entropy loss, accuracy; agreement: the same predicted class."""

    metric = "accuracy"

    def __init__(self, classes: int) -> None:
        self.outputs = classes

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(logits, targets)

    def predictions(self, logits: np.ndarray) -> np.ndarray:
        return np.argmax(logits, axis=-1)

    def score(self, predictions: np.ndarray, targets: np.ndarray) -> float:
        return float(np.mean(predictions == targets))

    def agreement(self, predictions: np.ndarray, reference: np.ndarray) -> float:
        return float(np.mean(predictions == reference))


# (rng, batch size) -> (x [T, B, I] float32, targets [B])
BatchSampler = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True, eq=False)
class TaskData:
    """One task at one sequence length: its test set, training batches and objective.

    ``tag`` names the task and data source in results rows (``task`` column) and in
    checkpoint file names: ``adding``, ``digits``, or ``digits:<file stem>`` for a
    user's MNIST-style file.
    """

    tag: str
    seq_len: int
    input_size: int
    objective: Objective
    x_test: np.ndarray  # [T, N, I] float32
    y_test: np.ndarray  # [N]
    sample: BatchSampler
    default_steps: int
    description: str

    @property
    def n_test(self) -> int:
        return self.x_test.shape[1]

    def calibration(self, items: int) -> np.ndarray:
        """Training inputs [T, items, I] for backends that calibrate (never the test set)."""
        x, _ = self.sample(np.random.default_rng(12345), items)
        return x
