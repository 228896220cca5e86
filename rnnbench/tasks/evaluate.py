"""Scoring trained models: in PyTorch while training, and under any backend in a sweep.

A backend runs only the recurrent cell (``Prepared.run`` returns hidden states); the
final hidden state goes through the model's float readout. Agreement compares a
backend's predictions with those of the trained PyTorch model on the same items.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rnnbench import grid
from rnnbench.backends.base import Backend
from rnnbench.cells import Weights
from rnnbench.grid import Point
from rnnbench.results.stats import error_metrics
from rnnbench.tasks.base import TaskData
from rnnbench.tasks.model import TaskModel


def eval_items(backend: str, n_test: int, limit: int | None = None,
               params: Mapping[str, Any] | None = None) -> int:
    """How many test items (always the first ones) a backend evaluates: ``limit``, else its default."""
    from rnnbench import backends

    limit = limit if limit is not None else backends.get(backend).eval_limit(params or {})
    return min(n_test, limit) if limit else n_test


def evaluate_model(model: TaskModel, data: TaskData) -> float:
    """The task metric of ``model`` on the whole test set, computed in PyTorch."""
    predictions = data.objective.predictions(model.readout_numpy(model.final_hidden(data.x_test)))
    return data.objective.score(predictions, data.y_test)


def evaluate_backend(
    backend: Backend,
    model: TaskModel,
    data: TaskData,
    params: dict[str, Any],
    n_eval: int,
    threads: int = 1,
) -> dict[str, Any]:
    """Score ``model`` under ``backend`` on the first ``n_eval`` test items: results columns."""
    x = np.ascontiguousarray(data.x_test[:, :n_eval])
    targets = data.y_test[:n_eval]
    reference_hidden = model.final_hidden(x)
    reference = data.objective.predictions(model.readout_numpy(reference_hidden))

    start = time.perf_counter()
    # Calibrated on training inputs, at least as many as the backend asks for.
    calibration = data.calibration(max(n_eval, backend.calibration_sequences))
    prepared = backend.prepare_for(Weights.from_module(model.cell), params, calibration, n_eval, threads)
    prepare_time = time.perf_counter() - start
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    hidden = np.asarray(prepared.run(x))[-1]
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    predictions = data.objective.predictions(model.readout_numpy(hidden))
    return {
        "metric": data.objective.metric,
        "metric_value": data.objective.score(predictions, targets),
        "n_eval": n_eval,
        "agreement": data.objective.agreement(predictions, reference),
        "prepare_time_s": prepare_time,
        "wall_time_s": wall,
        "cpu_time_s": cpu,
        "time_per_step_s": wall / data.seq_len,
        **error_metrics(hidden, reference_hidden, "final_"),
        **prepared.facts(),
    }



def evaluate_point(point: Point, backend: Backend, models_dir: str | Path,
                   data_path: str | Path | None = None) -> dict[str, Any]:
    """The accuracy columns of a sweep point: its checkpoint scored under its backend."""
    from rnnbench import tasks
    from rnnbench.tasks import checkpoints

    data = tasks.load(tasks.task_name(point.task), point.seq_len, data_path)
    if data.tag != point.task:
        raise tasks.TaskError(f"point is for task {point.task!r} but the data is {data.tag!r}")
    path = checkpoints.path_for(models_dir, point.task, point.cell, point.seq_len,
                                point.hidden_size, point.seed)
    model, meta = checkpoints.load(path)
    if meta.get("activations") != point.model_activations:
        raise checkpoints.CheckpointError(
            f"{path} was replaced since the sweep was planned (activations "
            f"{meta.get('activations')!r}, planned {point.model_activations!r})")
    facts = evaluate_backend(backend, model, data, point.backend_params, point.batch_size, point.threads)
    return {**facts, "train_step": meta["steps"]}


def accuracy_points(
    datasets: Sequence[TaskData],
    cells: Sequence[str],
    backends: Sequence[str],
    hidden_sizes: Sequence[int],
    seed: int,
    threads: int = 1,
    backend_params: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    n_eval: int | None = None,
    models_dir: str | Path | None = None,
) -> list[Point]:
    """Sweep points that score each model under each backend (``batch_size`` = test items evaluated).

    A model in ``models_dir`` fine-tuned with other activations makes its points distinct
    (:attr:`Point.model_activations`), so its accuracy never replaces the exact model's.
    """
    from rnnbench.tasks import checkpoints

    points = []
    for data in datasets:
        for backend in backends:
            expanded = grid.expand(cells, [backend], [data.seq_len], hidden_sizes, [data.n_test],
                                   input_size=data.input_size, threads=threads, seed=seed,
                                   backend_params=backend_params, task=data.tag)
            points += [replace(p, batch_size=eval_items(backend, data.n_test, n_eval, p.backend_params))
                       for p in expanded]
    if models_dir is None:
        return points
    return [replace(p, model_activations=checkpoints.activations(checkpoints.path_for(
        models_dir, p.task, p.cell, p.seq_len, p.hidden_size, p.seed))) for p in points]
