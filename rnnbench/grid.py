"""Points: frozen, hashable descriptions of one measurement, and the grid that expands them."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def _freeze(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


@dataclass(frozen=True)
class Point:
    """Everything that determines one measurement; its :attr:`point_id` is the resume key."""

    cell: str
    backend: str
    seq_len: int
    hidden_size: int
    input_size: int
    batch_size: int
    threads: int = 1
    seed: int = 0
    params: tuple[tuple[str, Any], ...] = field(default=())
    task: str | None = None
    # With a task: the activations the scored model was fine-tuned with, when not its own
    # exact ones (``"ckks"``: polynomial-aware, ``rnnbench train --activations ckks``).
    # The same file name in another models directory is another model, so another point.
    model_activations: str | None = None

    @classmethod
    def make(cls, params: Mapping[str, Any] | None = None, **fields: Any) -> Point:
        return cls(params=_freeze(params or {}), **fields)

    @property
    def backend_params(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def point_id(self) -> str:
        """A stable hash of the parameters (same point, same id, across runs and machines)."""
        payload = {**asdict(self), "params": self.backend_params}
        if self.model_activations is None:  # ids from before the field existed stay valid
            del payload["model_activations"]
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def columns(self) -> dict[str, Any]:
        """The identity columns of this point's results rows."""
        return {
            "point_id": self.point_id,
            "cell": self.cell,
            "backend": self.backend,
            "task": self.task,
            "model_activations": self.model_activations,
            "seq_len": self.seq_len,
            "hidden_size": self.hidden_size,
            "input_size": self.input_size,
            "batch_size": self.batch_size,
            "threads": self.threads,
            "seed": self.seed,
            "backend_params": json.dumps(self.backend_params, sort_keys=True),
        }

    def label(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in self.params)
        task = f"{self.task} " if self.task else ""
        task += f"({self.model_activations}-aware model) " if self.model_activations else ""
        return (f"{task}{self.cell}/{self.backend} T={self.seq_len} H={self.hidden_size} "
                f"B={self.batch_size}{extra}")


def expand(
    cells: Sequence[str],
    backends: Sequence[str],
    seq_lens: Sequence[int],
    hidden_sizes: Sequence[int],
    batch_sizes: Sequence[int],
    input_size: int,
    threads: int = 1,
    seed: int = 0,
    backend_params: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    task: str | None = None,
) -> list[Point]:
    """The cross product of the lists, in a deterministic order.

    Cells vary fastest, so the cells being compared are measured next to each other
    (slow drift of the machine affects them alike). ``backend_params`` maps a backend
    name to the parameter variants to measure it with (default: one variant, ``{}``).
    """
    backend_params = backend_params or {}
    points = []
    for seq_len, hidden, batch, backend in itertools.product(
        seq_lens, hidden_sizes, batch_sizes, backends
    ):
        for params in backend_params.get(backend, [{}]):
            points.extend(
                Point.make(
                    params, cell=cell, backend=backend, seq_len=seq_len, hidden_size=hidden,
                    input_size=input_size, batch_size=batch, threads=threads, seed=seed, task=task,
                )
                for cell in cells
            )
    return points
