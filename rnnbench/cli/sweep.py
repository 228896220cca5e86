"""``rnnbench sweep``: plan (see :mod:`.plan`), train what an accuracy sweep lacks, run, summarise."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rnnbench.cli.common import (
    DEFAULT_MODELS,
    InputError,
    app,
    err,
    fail,
    print_table,
    results_path,
    write_failure,
)
from rnnbench.cli.plan import ExecutorChoice, SweepOptions, SweepPlan, plan_sweep
from rnnbench.presets import PRESETS
from rnnbench.results import store

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rnnbench.executors import Executor
    from rnnbench.grid import Point

RESUME_HINT = "rerun with --resume to finish"


@app.command()
def sweep(
    cells_: Annotated[str | None, typer.Option("--cells", help="Comma list of cells.")] = None,
    backends_: Annotated[
        str | None, typer.Option("--backends", help="Comma list of backends.")] = None,
    seq_lens: Annotated[str | None, typer.Option(help="Comma list of sequence lengths T.")] = None,
    hidden: Annotated[str | None, typer.Option(help="Comma list of hidden sizes H.")] = None,
    batch: Annotated[str | None, typer.Option(help="Comma list of batch sizes B.")] = None,
    input_size: Annotated[str | None, typer.Option(help="Comma list of input sizes I.")] = None,
    threads: Annotated[str, typer.Option(
        help="Comma list of threads per point (each one a grid of its own).")] = "1",
    min_time: Annotated[
        float | None, typer.Option(help="Seconds of timed samples per point, at least.")] = None,
    repeats: Annotated[
        int | None, typer.Option(help="Timed samples per point, at least.")] = None,
    timeout: Annotated[float, typer.Option(help="Hard time limit per point, seconds.")] = 300.0,
    seed: Annotated[int, typer.Option(help="Seed for weights and inputs.")] = 0,
    out: Annotated[Path, typer.Option(
        help="Results directory (a new file per sweep) or a .parquet file (appended).")
    ] = Path("results"),
    resume: Annotated[bool, typer.Option(
        help="Skip points already measured ok in the output (the newest file of a directory).")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the grid and exit.")] = False,
    preset: Annotated[str | None, typer.Option(
        help=f"Named configuration: {', '.join(PRESETS)}. Explicit options override it.")
    ] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="Backend parameter values, BACKEND.KEY=V1,V2 (repeatable, "
                              "one -p per key).")
    ] = None,
    summary_format: Annotated[str, typer.Option(
        "--format", help="Summary on stdout: md, csv or json.")] = "md",
    workers: Annotated[int | None, typer.Option(
        help="Run points on a local Dask cluster of N single-threaded worker processes.")] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="Run points on an existing Dask cluster, e.g. tcp://HOST:8786.")] = None,
    warmup: Annotated[
        int | None, typer.Option(help="Warm-up samples per point (kept, flagged).")] = None,
    ckks_poly_degree: Annotated[str | None, typer.Option(
        help="CKKS ring degree(s), e.g. 16384 (same as -p ckks.poly_degree=...).")] = None,
    ckks_scale_bits: Annotated[str | None, typer.Option(
        help="CKKS scale bits (same as -p ckks.scale_bits=...).")] = None,
    ckks_refresh_every: Annotated[str | None, typer.Option(
        help="CKKS steps between client refreshes (same as -p ckks.refresh_every=...).")] = None,
    task: Annotated[str | None, typer.Option(
        help="Measure accuracy on a task (adding, digits) instead of timing: each cell's trained "
             "model is scored on the test set under each backend (missing models are trained).")
    ] = None,
    models: Annotated[Path, typer.Option(help="With --task: the checkpoints directory.")
    ] = DEFAULT_MODELS,
    data: Annotated[Path | None, typer.Option(
        help="With --task digits: an MNIST-style .npz (x_train, y_train, x_test, y_test).")] = None,
    n_eval: Annotated[int | None, typer.Option(
        help="With --task: score only the first N test items on every backend "
             "(default: all of them; ckks: the first 256).")] = None,
    train_steps: Annotated[int | None, typer.Option(
        help="With --task: training steps for models not yet in --models "
             "(default: 2000).")] = None,
) -> None:
    """Measure cells x backends x sizes; write Parquet rows and print a summary table.

    With --task, the rows are accuracy rows instead: one per cell x backend x size.
    """
    from rnnbench.sweep import new_run_id

    options = SweepOptions(
        cells=cells_, backends=backends_, seq_lens=seq_lens, hidden=hidden, batch=batch,
        input_size=input_size, threads=threads, min_time=min_time, repeats=repeats,
        timeout=timeout, seed=seed, out=out, resume=resume, preset=preset, params=param or [],
        summary_format=summary_format, workers=workers, scheduler=scheduler, warmup=warmup,
        ckks_poly_degree=ckks_poly_degree, ckks_scale_bits=ckks_scale_bits,
        ckks_refresh_every=ckks_refresh_every, task=task, models=models, data=data,
        n_eval=n_eval, train_steps=train_steps,
    )
    try:
        plan = plan_sweep(options)
        if dry_run:
            for point in plan.points:
                print(f"{point.point_id}\t{point.label()}")
            return
        run_id = new_run_id()
        path = results_path(plan.out, plan.resume, run_id)
        executor = make_executor(plan.executor)
    except InputError as exc:
        raise fail(str(exc)) from None
    except store.ResultsFileError as exc:
        raise fail(f"{exc} (left untouched)") from None

    if plan.task is not None:
        train_missing(plan)
    run_plan(plan, path, run_id, executor, preset)


def train_missing(plan: SweepPlan) -> None:
    """Train the models the accuracy points need but lack (each task's default steps unless given)."""
    from rnnbench.cli.train import TrainingBars
    from rnnbench.tasks import orchestrate
    from rnnbench.tasks.training import TrainConfig

    models = Path(plan.settings.models_dir)
    jobs = orchestrate.missing_models(plan.points, plan.datasets, models)
    if jobs:
        err.print(f"training {len(jobs)} missing models into {models}")
        with TrainingBars.display() as progress:
            orchestrate.train_models(jobs, lambda data: TrainConfig.for_task(data, plan.train_steps),
                                     models, TrainingBars(progress))


def run_plan(plan: SweepPlan, path: Path, run_id: str, executor: Executor, preset: str | None) -> None:
    """Run the planned points into ``path`` with a progress bar; print the summary on stdout."""
    from rnnbench.executors import ClusterError
    from rnnbench.results import summary
    from rnnbench.sweep import new_run, run_sweep

    args = {"argv": sys.argv[1:], "preset": preset, "points": len(plan.points),
            "executor": executor.description}
    run = new_run(run_id, args, plan.settings)
    err.print(f"run {run['run_id']}: {len(plan.points)} points -> {path} ({executor.description})")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=False) as progress:
        bar = progress.add_task("sweep", total=len(plan.points))

        def on_start(todo: int) -> None:
            progress.update(bar, total=todo)

        def on_point(point: Point, rows: list[dict[str, Any]]) -> None:
            status = rows[0]["status"]
            note = "" if status == "ok" else f" [{status}]"
            progress.update(bar, advance=1, description=f"{point.label()}{note}")
            if not err.is_terminal:  # logs (nohup, CI) get a line per point instead of a bar
                progress.console.print(f"{point.label()}: {status}", markup=False)

        with stop_on_signals() as (stop, received):
            try:
                outcome = run_sweep(plan.points, plan.settings, path, run, resume=plan.resume,
                                    executor=executor, stop=stop, on_start=on_start,
                                    on_point=on_point)
            except KeyboardInterrupt:
                progress.stop()
                signum = received.get("signal", signal.SIGINT)
                what = "interrupted" if signum == signal.SIGINT else "terminated"
                err.print(f"{what}: points measured so far are kept in {path}; {RESUME_HINT}")
                raise typer.Exit(128 + signum) from None
            except ClusterError as exc:
                progress.stop()
                raise fail(f"{exc}; points measured so far are kept in {path}, {RESUME_HINT}",
                           code=1) from None
            except OSError as exc:
                progress.stop()
                raise write_failure(path, exc, f", {RESUME_HINT} once it is writable") from None
    if outcome.skipped_done:
        err.print(f"resume: {outcome.skipped_done} points already ok in {path}")
    err.print(f"wrote {path} ({outcome.statuses})")
    if not store.exists(path):
        return
    rows, _ = store.read(path)
    # This sweep's points; after --resume, the earlier run's measurements of them too.
    ours = rows["point_id"].isin({p.point_id for p in plan.points})
    rows = rows[ours & ((rows["run_id"] == run["run_id"]) | plan.resume)]
    if plan.task is not None:
        print_table(summary.accuracy_table(rows), plan.summary_format, summary.markdown)
    else:
        print_table(summary.summarize(rows), plan.summary_format, summary.format_markdown)


@contextmanager
def stop_on_signals() -> Iterator[tuple[threading.Event, dict[str, int]]]:
    """Ctrl-C and SIGTERM during a sweep: set the stop event (the runner stops waiting for the
    point in flight) and interrupt. Yields the event and a dict that records the signal."""
    stop = threading.Event()
    received: dict[str, int] = {}

    def request_stop(signum: int, frame: Any) -> None:
        received["signal"] = signum
        stop.set()
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop, received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def make_executor(choice: ExecutorChoice) -> Executor:
    """Where the sweep's points run: in-process, a local Dask cluster, or a running one."""
    from rnnbench.executors import ClusterError, DaskCluster, Sequential

    if choice.workers is not None or choice.scheduler is not None:
        # Dask logs tracebacks for events that end as a point's error row or a one-line error.
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
    if choice.workers is not None:
        err.print(f"starting a local Dask cluster of {choice.workers} worker processes")
        return DaskCluster.local(choice.workers)
    if choice.scheduler is not None:
        try:
            return DaskCluster.connect(choice.scheduler)
        except ClusterError as exc:
            raise InputError(str(exc)) from None
    return Sequential()
