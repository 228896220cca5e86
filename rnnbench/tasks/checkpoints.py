"""Trained models on disk: a torch ``state_dict`` plus a JSON sidecar that says what it is.

File names are derived from what identifies a model (task, sequence length, hidden size,
cell, seed), so the sweep finds the checkpoint a point needs without an index:
``models/adding-T100-H64-gru-s0.pt`` and ``...-s0.json`` next to it. Both are written
to a temporary file and renamed, so an interrupted save never leaves half a model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rnnbench.files import write_atomic
from rnnbench.tasks.model import TaskModel


class CheckpointError(Exception):
    """A checkpoint that is missing or cannot be read."""


def stem(tag: str, cell: str, seq_len: int, hidden_size: int, seed: int) -> str:
    return f"{tag.replace(':', '-')}-T{seq_len}-H{hidden_size}-{cell}-s{seed}"


def path_for(models_dir: str | os.PathLike, tag: str, cell: str, seq_len: int, hidden_size: int,
             seed: int) -> Path:
    """The checkpoint file (``.pt``; its sidecar is the same name with ``.json``)."""
    return Path(models_dir) / f"{stem(tag, cell, seq_len, hidden_size, seed)}.pt"


def sidecar_path(checkpoint: Path) -> Path:
    return checkpoint.with_suffix(".json")


def save(checkpoint: Path, model: TaskModel, sidecar: Mapping[str, Any]) -> None:
    """Write the model's weights and its sidecar (weights first: a sidecar implies its weights)."""
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    write_atomic(checkpoint, lambda tmp: torch.save(state, tmp))
    text = json.dumps(dict(sidecar), indent=2, sort_keys=True, default=str)
    write_atomic(sidecar_path(checkpoint), lambda tmp: tmp.write_text(text + "\n"))


def load(checkpoint: Path) -> tuple[TaskModel, dict[str, Any]]:
    """The model (in eval mode, on the CPU) and its sidecar; :class:`CheckpointError` if unusable."""
    meta_path = sidecar_path(checkpoint)
    if not checkpoint.exists() or not meta_path.exists():
        raise CheckpointError(f"no checkpoint {checkpoint} (train it with `rnnbench train`)")
    try:
        meta = json.loads(meta_path.read_text())
        model = TaskModel(meta["cell"], meta["input_size"], meta["hidden_size"], meta["outputs"])
        model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{checkpoint}: unreadable checkpoint ({type(exc).__name__}: {exc})") from None
    return model.eval(), meta


def activations(checkpoint: Path) -> str | None:
    """The activations a checkpoint was fine-tuned with (``"ckks"``), or ``None`` for a model
    trained with its exact ones, or one not trained yet (a sweep trains exact models)."""
    try:
        meta = json.loads(sidecar_path(checkpoint).read_text())
    except (OSError, ValueError):
        return None
    return meta.get("activations") if isinstance(meta, dict) else None
