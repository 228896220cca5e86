"""The sweep plan: the ``sweep`` command's options -> points, settings, output and executor.

Pure apart from reading a task's data (``load_task``, injectable): nothing is measured,
written or started, so every option check happens here, before any work, and tests call
:func:`plan_sweep` without Typer. Lists are swept as cross products: ``--input-size 16,32``
and ``--threads 1,2`` give a grid over both, like ``--hidden``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnbench import backends, cells, grid
from rnnbench.cli.common import (
    DEFAULT_HIDDEN,
    DEFAULT_MODELS,
    InputError,
    backend_param_variants,
    check_format,
    check_int,
    check_points,
    check_positive_float,
    parse_names,
    parse_positive_ints,
)
from rnnbench.measure import Settings
from rnnbench.presets import PRESETS

if TYPE_CHECKING:
    from rnnbench.tasks import TaskData


@dataclass(frozen=True)
class SweepOptions:
    """The ``sweep`` command's options as given (``None``: not given, the preset or default applies)."""

    cells: str | None = None
    backends: str | None = None
    seq_lens: str | None = None
    hidden: str | None = None
    batch: str | None = None
    input_size: str | None = None
    threads: str = "1"
    min_time: float | None = None
    repeats: int | None = None
    timeout: float = 300.0
    seed: int = 0
    out: Path = Path("results")
    resume: bool = False
    preset: str | None = None
    params: list[str] = field(default_factory=list)
    summary_format: str = "md"
    workers: int | None = None
    scheduler: str | None = None
    warmup: int | None = None
    ckks_poly_degree: str | None = None
    ckks_scale_bits: str | None = None
    ckks_refresh_every: str | None = None
    task: str | None = None
    models: Path = DEFAULT_MODELS
    data: Path | None = None
    n_eval: int | None = None
    train_steps: int | None = None


@dataclass(frozen=True)
class ExecutorChoice:
    """Where the points run: here, one after another (both ``None``), a local Dask cluster of
    ``workers`` processes, or the running cluster at ``scheduler``."""

    workers: int | None = None
    scheduler: str | None = None


@dataclass(frozen=True)
class SweepPlan:
    points: list[grid.Point]
    settings: Settings
    out: Path  # --out as given: a .parquet file, or a directory for a new file
    resume: bool
    executor: ExecutorChoice
    summary_format: str
    task: str | None = None
    datasets: list[TaskData] = field(default_factory=list)  # with a task: its data per length
    train_steps: int | None = None  # with a task: steps for models not yet trained


def _option(explicit: Any, preset: dict[str, Any], key: str) -> Any:
    return explicit if explicit is not None else preset.get(key, PRESETS["default"][key])


def load_tasks(task: str, seq_lens: str | None, data: Path | None, option: str,
               load_task: Callable[..., TaskData] | None = None) -> list[TaskData]:
    """The task at each sequence length given with ``option`` (default: the task's own)."""
    from rnnbench import tasks

    load_task = load_task or tasks.load
    lengths: list[int | None] = (
        list(parse_positive_ints(seq_lens, option)) if seq_lens is not None else [None])
    try:
        return [load_task(task, seq_len, data) for seq_len in lengths]
    except tasks.TaskError as exc:
        raise InputError(str(exc)) from None


def plan_sweep(o: SweepOptions, load_task: Callable[..., TaskData] | None = None) -> SweepPlan:
    """Check every option and expand the grid; :class:`InputError` (one line) for bad input."""
    if o.preset is not None and o.preset not in PRESETS:
        raise InputError(f"unknown preset {o.preset!r}; valid presets: {', '.join(PRESETS)}")
    chosen: dict[str, Any] = PRESETS[o.preset] if o.preset else {}
    check_format(o.summary_format)
    if o.workers is not None and o.scheduler is not None:
        raise InputError("--workers and --scheduler exclude each other: start a local cluster "
                         "or use an existing one")
    if o.workers is not None:
        check_int(o.workers, "--workers")
    check_int(o.seed, "--seed", minimum=0)
    cell_list = parse_names(_option(o.cells, chosen, "cells"), cells.names(), "cells")
    backend_list = parse_names(_option(o.backends, chosen, "backends"), backends.names(), "backends")
    settings = Settings(
        min_time=check_positive_float(_option(o.min_time, chosen, "min_time"), "--min-time"),
        repeats=check_int(_option(o.repeats, chosen, "repeats"), "--repeats"),
        timeout=check_positive_float(o.timeout, "--timeout"),
        warmup=check_int(_option(o.warmup, chosen, "warmup"), "--warmup", minimum=0),
        models_dir=str(o.models), task_data=str(o.data) if o.data else None,
    )
    shortcuts = {"poly_degree": o.ckks_poly_degree, "scale_bits": o.ckks_scale_bits,
                 "refresh_every": o.ckks_refresh_every}
    given = [*o.params, *(f"ckks.{key}={value}" for key, value in shortcuts.items()
                          if value is not None)]
    if any(value is not None for value in shortcuts.values()) and "ckks" not in backend_list:
        raise InputError("--ckks-* options need the ckks backend in --backends")
    thread_counts = parse_positive_ints(o.threads, "--threads")
    datasets: list[TaskData] = []
    if o.task is not None:
        datasets = load_tasks(o.task, o.seq_lens, o.data, "--seq-lens", load_task)
        if o.batch is not None or o.input_size is not None:
            raise InputError("--batch and --input-size do not apply with --task "
                             "(the test set sets them; see --n-eval)")
        for value, option in ((o.n_eval, "--n-eval"), (o.train_steps, "--train-steps")):
            if value is not None:
                check_int(value, option)
        from rnnbench.tasks.evaluate import accuracy_points

        variants = backend_param_variants(backend_list, given)
        hidden_sizes = parse_positive_ints(o.hidden or str(DEFAULT_HIDDEN), "--hidden")
        points = [
            point for threads in thread_counts for point in accuracy_points(
                datasets, cell_list, backend_list, hidden_sizes, o.seed, n_eval=o.n_eval,
                threads=threads, backend_params=variants, models_dir=o.models)
        ]
    elif o.data is not None or o.n_eval is not None or o.train_steps is not None:
        raise InputError("--data, --n-eval and --train-steps apply only with --task")
    else:
        # A preset may consist of parts (e.g. one batch size per CKKS packing); each part is a grid.
        points = []
        for part in chosen.get("parts", [{}]):
            options = {**chosen, **part}
            variants = backend_param_variants(backend_list, given, options.get("params", []))
            seq_lens = parse_positive_ints(_option(o.seq_lens, options, "seq_lens"), "--seq-lens")
            hidden = parse_positive_ints(_option(o.hidden, options, "hidden"), "--hidden")
            batch = parse_positive_ints(_option(o.batch, options, "batch"), "--batch")
            input_sizes = parse_positive_ints(_option(o.input_size, options, "input_size"),
                                              "--input-size")
            for threads in thread_counts:
                for input_size in input_sizes:
                    points += grid.expand(cell_list, backend_list, seq_lens, hidden, batch,
                                          input_size=input_size, threads=threads, seed=o.seed,
                                          backend_params=variants)
        points = list(dict.fromkeys(points))  # parts may overlap once options override them
    check_points(points)
    return SweepPlan(
        points=points, settings=settings, out=o.out, resume=o.resume,
        executor=ExecutorChoice(o.workers, o.scheduler), summary_format=o.summary_format,
        task=o.task, datasets=datasets, train_steps=o.train_steps,
    )
