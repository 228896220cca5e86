"""Accuracy tasks: what each cell learns, scored under every backend.

``load(name, seq_len, data)`` gives a :class:`~rnnbench.tasks.base.TaskData` (test set,
training batches, objective); :mod:`.training` trains a cell plus linear readout on it,
:mod:`.checkpoints` stores the result and :mod:`.evaluate` scores it with any backend.
"""

from __future__ import annotations

from pathlib import Path

from rnnbench.tasks.base import TaskData, TaskError

_TASKS = ("adding", "digits")


def names() -> list[str]:
    """The task names, in a stable order."""
    return list(_TASKS)


def task_name(tag: str) -> str:
    """The task of a results ``task`` tag: ``"digits:mnist"`` -> ``"digits"``."""
    return tag.split(":", 1)[0]


def load(name: str, seq_len: int | None = None, data: str | Path | None = None) -> TaskData:
    """Task ``name`` at ``seq_len`` (``None``: the task's default); :class:`TaskError` if impossible.

    ``data`` (digits only) is a user's MNIST-style ``.npz`` file.
    """
    if name == "adding":
        if data is not None:
            raise TaskError("--data applies to the digits task only")
        from rnnbench.tasks import adding

        return adding.load(seq_len)
    if name == "digits":
        from rnnbench.tasks import digits

        return digits.load(seq_len, data)
    raise TaskError(f"unknown task {name!r}; valid tasks: {', '.join(_TASKS)}")


__all__ = ["TaskData", "TaskError", "load", "names", "task_name"]
