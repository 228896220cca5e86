"""Reference definitions of the cells (GRU, LSTM, reluadd) and their cost model."""

from __future__ import annotations

import torch

from rnnbench.cells.reference import STEPS, RecurrentCell
from rnnbench.cells.weights import Weights


def names() -> list[str]:
    """The cells rnnbench knows, in a stable order."""
    return list(STEPS)


def make_cell(
    name: str, input_size: int, hidden_size: int, seed: int | None = None
) -> RecurrentCell:
    """Build a reference cell with PyTorch's initialisation, reproducible when ``seed`` is given."""
    cell = RecurrentCell(name, input_size, hidden_size)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    cell.reset_parameters(generator)
    return cell


__all__ = ["RecurrentCell", "Weights", "make_cell", "names"]
