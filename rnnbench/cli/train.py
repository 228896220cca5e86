"""``rnnbench train``: train each cell on a task with one fixed budget; checkpoints and curves."""

from __future__ import annotations

import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rnnbench import cells
from rnnbench.cli.common import (
    DEFAULT_HIDDEN,
    DEFAULT_MODELS,
    InputError,
    app,
    backend_param_variants,
    check_format,
    check_int,
    check_positive_float,
    err,
    fail,
    parse_names,
    parse_positive_ints,
    parse_seeds,
    print_table,
    results_path,
    write_failure,
)
from rnnbench.cli.plan import load_tasks
from rnnbench.results import store

if TYPE_CHECKING:
    from rnnbench.tasks import TaskData
    from rnnbench.tasks.orchestrate import Job
    from rnnbench.tasks.training import TrainConfig


class TrainingBars:
    """Training progress on stderr: a bar per model with its loss, and a log line when it ends."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.bars: dict[int, TaskID] = {}

    @classmethod
    def display(cls) -> Progress:
        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=False)

    def started(self, job: Job, steps: int) -> None:
        self.bars[id(job)] = self.progress.add_task(job.label, total=steps)

    def step(self, job: Job, step: int, loss: float) -> None:
        self.progress.update(self.bars[id(job)], completed=step, description=f"{job.label} loss {loss:.4g}")

    def finished(self, job: Job, result: str) -> None:
        self.progress.update(self.bars[id(job)], description=result.split(" (")[0])
        # A log line too, so that runs without a terminal (nohup, CI) show progress.
        self.progress.console.print(result, markup=False, highlight=False)


@app.command()
def train(
    task: Annotated[str, typer.Option(help="Task: adding or digits.")],
    cells_: Annotated[str, typer.Option("--cells", help="Comma list of cells.")] = "gru,lstm,reluadd",
    seq_len: Annotated[str | None, typer.Option(
        help="Comma list of sequence lengths (adding: default 100; digits: 8 rows or 64 pixels).")
    ] = None,
    hidden: Annotated[str, typer.Option(help="Comma list of hidden sizes.")] = str(DEFAULT_HIDDEN),
    steps: Annotated[int | None, typer.Option(
        help="Optimizer steps (default: 2000).")] = None,
    seed: Annotated[str, typer.Option(help="Comma list of seeds (one model per seed).")] = "0",
    lr: Annotated[float | None, typer.Option(
        help="Peak learning rate of Adam (default 2e-3; fine-tuning: 5e-4).")] = None,
    batch_size: Annotated[int, typer.Option(help="Sequences per optimizer step.")] = 64,
    curve_every: Annotated[int, typer.Option(
        help="Learning-curve point every N steps (0: 20 points per model).")] = 0,
    models: Annotated[Path, typer.Option(help="Checkpoints directory.")] = DEFAULT_MODELS,
    out: Annotated[Path, typer.Option(
        help="Learning curves: results directory (a new file) or a .parquet file (appended).")
    ] = Path("results"),
    data: Annotated[Path | None, typer.Option(
        help="digits: an MNIST-style .npz (x_train, y_train, x_test, y_test).")] = None,
    threads: Annotated[int, typer.Option(help="Torch threads for training (recorded).")] = 1,
    lstm_forget_bias: Annotated[float, typer.Option(
        help="Added to the LSTM's forget-gate bias at initialisation (0: PyTorch's; 1: Keras's).")
    ] = 0.0,
    summary_format: Annotated[str, typer.Option(
        "--format", help="Table of trained models on stdout: md, csv or json.")] = "md",
    activations: Annotated[str, typer.Option(
        help="exact: train from scratch. ckks: fine-tune the checkpoints in --from-models with the "
             "CKKS backend's own polynomials in place of sigmoid/tanh/relu (polynomial-aware). "
             "tfhe: fine-tune them through the TFHE backend's integer model (quantization-aware). "
             "Fine-tuned models are saved to --models (default steps: ckks 400, tfhe 1000).")] = "exact",
    from_models: Annotated[Path, typer.Option(
        help="With --activations ckks|tfhe: the trained checkpoints to fine-tune.")] = DEFAULT_MODELS,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="With --activations ckks|tfhe: that backend's settings, "
                              "ckks.KEY=VALUE or tfhe.KEY=VALUE (repeatable).")
    ] = None,
) -> None:
    """Train each cell with a linear readout on a task with one fixed budget; save checkpoints."""
    import pandas as pd
    import torch

    from rnnbench.files import check_writable
    from rnnbench.results import summary
    from rnnbench.sweep import new_run, new_run_id
    from rnnbench.tasks import orchestrate, training

    try:
        check_format(summary_format)
        cell_list = parse_names(cells_, cells.names(), "cells")
        datasets = load_tasks(task, seq_len, data, "--seq-len")
        hidden_sizes = parse_positive_ints(hidden, "--hidden")
        seeds = parse_seeds(seed)
        for value, option in ((steps, "--steps"), (batch_size, "--batch-size"),
                              (threads, "--threads")):
            if value is not None:
                check_int(value, option)
        check_int(curve_every, "--curve-every", minimum=0)
        if lr is not None:
            check_positive_float(lr, "--lr")
        if activations not in ("exact", *FINETUNERS):
            raise InputError(f"--activations must be exact, ckks or tfhe, got {activations!r}")
        if activations in FINETUNERS:
            jobs = [(d, c, h, s) for d in datasets for h in hidden_sizes for s in seeds for c in cell_list]
            return _finetune(activations, jobs, from_models, models, param or [], steps, lr,
                             summary_format)
        if param:
            raise InputError("--param is for --activations ckks or tfhe")
        if not math.isfinite(lstm_forget_bias):
            raise InputError(f"--lstm-forget-bias must be a finite number, got {lstm_forget_bias}")
        run_id = new_run_id()
        path = results_path(out, resume=False, run_id=run_id)
        try:
            models.mkdir(parents=True, exist_ok=True)
            check_writable(models)
        except OSError as exc:
            raise InputError(f"cannot write models to {models}: {exc.strerror or exc}") from None
    except InputError as exc:
        raise fail(str(exc)) from None
    except store.ResultsFileError as exc:
        raise fail(f"{exc} (left untouched)") from None

    torch.set_num_threads(threads)

    def config_for(task_data: TaskData) -> TrainConfig:
        return training.TrainConfig.for_task(task_data, steps, batch_size=batch_size, lr=lr or 2e-3,
                                             curve_every=curve_every, lstm_forget_bias=lstm_forget_bias)

    run = new_run(run_id, {"argv": sys.argv[1:], "command": "train"},
                  {"threads": threads, "train": asdict(config_for(datasets[0]))})
    trained_models: list[dict[str, Any]] = []

    def on_trained(job: Job, config: TrainConfig, checkpoint: Path, trained: training.Trained) -> None:
        rows = training.curve_rows(job.data, job.cell, job.hidden, job.seed, config, trained)
        try:
            store.append(path, rows, run)
        except OSError as exc:
            raise write_failure(path, exc) from None
        trained_models.append({
            "task": job.data.tag, "cell": job.cell, "seq_len": job.data.seq_len,
            "hidden_size": job.hidden, "seed": job.seed, "steps": config.steps,
            "metric": job.data.objective.metric, "metric_value": trained.final.test_metric,
            "train_loss": trained.final.train_loss, "train_cpu_s": trained.final.cpu_s,
            "checkpoint": str(checkpoint),
        })

    jobs = [orchestrate.Job(d, c, h, s)
            for d in datasets for h in hidden_sizes for s in seeds for c in cell_list]
    err.print(f"run {run['run_id']}: training {len(jobs)} models on {training.default_device()} "
              f"-> {models}, curves -> {path}")
    try:
        with TrainingBars.display() as progress:
            orchestrate.train_models(jobs, config_for, models, TrainingBars(progress), on_trained)
    except KeyboardInterrupt:
        err.print(f"interrupted: finished models are kept in {models}")
        raise typer.Exit(130) from None
    except OSError as exc:
        raise fail(f"cannot write models to {models}: {exc.strerror or exc}; "
                   "finished models are kept there", code=1) from None
    print_table(pd.DataFrame(trained_models), summary_format, summary.markdown)


# The fine-tuning module of each encrypted backend (``finetune_checkpoint`` and its result's ``columns``).
FINETUNERS = {"ckks": "rnnbench.tasks.polyaware", "tfhe": "rnnbench.tasks.tfheaware"}


def _finetune(backend: str, jobs: list[tuple[TaskData, str, int, int]], from_models: Path, models: Path,
              param: list[str], steps: int | None, lr: float | None, fmt: str) -> None:
    """``train --activations ckks|tfhe``: fine-tune existing checkpoints for that backend."""
    import importlib

    import pandas as pd

    from rnnbench.results import summary
    from rnnbench.tasks import checkpoints

    if from_models.resolve() == models.resolve():
        raise InputError(f"--activations {backend} writes fine-tuned models to --models; give the trained "
                         "ones as --from-models (another directory)")
    variants = backend_param_variants([backend], param)
    if len(variants[backend]) != 1:
        raise InputError(f"--param: give one value per {backend} setting")
    given = {item.split("=", 1)[0].removeprefix(f"{backend}.") for item in param}
    params = {k: v for k, v in variants[backend][0].items() if k in given}  # the sidecar records these
    bases = []
    for data, cell, hidden, seed in jobs:
        base = checkpoints.path_for(from_models, data.tag, cell, data.seq_len, hidden, seed)
        if not checkpoints.sidecar_path(base).exists():
            raise InputError(f"no checkpoint {base} to fine-tune (train it first, or give --from-models)")
        bases.append(base)
    finetuner = importlib.import_module(FINETUNERS[backend])
    models.mkdir(parents=True, exist_ok=True)
    table = []
    for (data, cell, hidden, seed), base in zip(jobs, bases, strict=True):
        err.print(f"fine-tuning {base.name} for {backend} ...")
        kwargs = {k: v for k, v in (("steps", steps), ("lr", lr)) if v is not None}
        path, result = finetuner.finetune_checkpoint(base, data, models, params, seed=seed, **kwargs)
        table.append({"task": data.tag, "cell": cell, "seq_len": data.seq_len, "hidden_size": hidden,
                      "seed": seed, "metric": data.objective.metric, **result.columns(),
                      "checkpoint": str(path)})
    print_table(pd.DataFrame(table), fmt, summary.markdown)
