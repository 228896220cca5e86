"""The ``rnnbench`` command line: thin Typer commands that parse, validate and delegate.

Errors in the user's input end with one line on stderr and exit status 2; progress
goes to stderr, so stdout carries only machine-readable output.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rnnbench import backends, cells, env
from rnnbench.presets import PRESETS
from rnnbench.results import store

if TYPE_CHECKING:
    from rnnbench.executors import Executor
    from rnnbench.grid import Point
    from rnnbench.tasks import TaskData
    from rnnbench.tasks.training import TrainConfig

DEFAULT_MODELS = Path("models")
DEFAULT_HIDDEN = 64  # hidden size of the task models unless --hidden says otherwise

app = typer.Typer(
    help="Cost and accuracy of GRU, LSTM and the ReLU-and-addition gated RNN cell.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)


class InputError(Exception):
    """Bad user input: reported as one line, exit status 2."""


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"rnnbench: error: {message}", markup=False, soft_wrap=True)
    return typer.Exit(code)


def parse_names(value: str, valid: list[str], what: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``, each checked against ``valid``."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise InputError(f"--{what} is empty; valid {what}: {', '.join(valid)}")
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise InputError(f"unknown {what} {', '.join(map(repr, unknown))}; "
                         f"valid {what}: {', '.join(valid)}")
    return list(dict.fromkeys(names))


def parse_positive_ints(value: str | int, option: str) -> list[int]:
    """``"10,100"`` -> ``[10, 100]``; every value a positive integer."""
    items = [v.strip() for v in str(value).split(",") if v.strip()]
    if not items:
        raise InputError(f"{option} is empty; give positive integers like 10,100")
    numbers = []
    for item in items:
        try:
            number = int(item)
        except ValueError:
            raise InputError(f"{option}: {item!r} is not an integer") from None
        if number <= 0:
            raise InputError(f"{option}: {number} is not positive")
        numbers.append(number)
    return list(dict.fromkeys(numbers))


def parse_seeds(value: str, option: str = "--seed") -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; every value a non-negative integer."""
    seeds = []
    for item in (v.strip() for v in value.split(",")):
        if not item.isdigit():
            raise InputError(f"{option}: {item!r} is not a non-negative integer")
        seeds.append(int(item))
    return list(dict.fromkeys(seeds))


def backend_param_variants(backend_list: list[str], given: list[str]) -> dict[str, list[dict]]:
    """``["ckks.packing=batch,vector"]`` -> each backend's validated parameter variants."""
    values: dict[str, dict[str, list[Any]]] = {name: {} for name in backend_list}
    for item in given:
        key, sep, raw = item.partition("=")
        backend, dot, name = key.partition(".")
        if not (sep and dot and name and raw):
            raise InputError(f"--param {item!r}: expected BACKEND.KEY=VALUE[,VALUE...]")
        if backend not in values:
            raise InputError(f"--param {item!r}: backend {backend!r} is not in --backends")
        values[backend][name] = [_scalar(v.strip()) for v in raw.split(",") if v.strip()]
    try:
        return {name: backends.get(name).param_variants(values[name]) for name in backend_list}
    except backends.InvalidParams as exc:
        raise InputError(str(exc)) from None


def check_points(points: list) -> None:
    """Refuse, before anything runs, a backend setting that cannot work for a point's cell."""
    seen = set()
    for point in points:
        key = (point.backend, point.cell, point.params, point.seq_len)
        if key in seen:
            continue
        seen.add(key)
        try:
            backends.get(point.backend).check_cell(point.cell, point.backend_params, point.seq_len)
        except backends.InvalidParams as exc:
            raise InputError(str(exc)) from None


def _scalar(text: str) -> Any:
    """A command-line value as int, float or string."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def results_path(out: Path, resume: bool, run_id: str) -> Path:
    """The results file for ``--out``, checked writable and, if it exists, readable back.

    Checked before any work, so a bad ``--out`` or a corrupt existing file (left untouched)
    ends the command at once.
    """
    path = store.resolve_output(out, run_id, resume)
    try:
        store.check_output(path)
    except OSError as exc:
        raise InputError(f"cannot write results to {out}: {exc.strerror or exc}") from None
    return path


def _positive_float(value: float, option: str) -> float:
    if not value > 0:
        raise InputError(f"{option} must be positive, got {value}")
    return value


def _option(explicit: Any, preset: dict[str, Any], key: str) -> Any:
    return explicit if explicit is not None else preset.get(key, PRESETS["default"][key])


@app.command()
def sweep(
    cells_: Annotated[str | None, typer.Option("--cells", help="Comma list of cells.")] = None,
    backends_: Annotated[
        str | None, typer.Option("--backends", help="Comma list of backends.")] = None,
    seq_lens: Annotated[str | None, typer.Option(help="Comma list of sequence lengths T.")] = None,
    hidden: Annotated[str | None, typer.Option(help="Comma list of hidden sizes H.")] = None,
    batch: Annotated[str | None, typer.Option(help="Comma list of batch sizes B.")] = None,
    input_size: Annotated[str | None, typer.Option(help="Input size I.")] = None,
    threads: Annotated[str, typer.Option(help="Threads per point (recorded).")] = "1",
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
        "--param", "-p", help="Backend parameter values, BACKEND.KEY=V1,V2 (repeatable).")
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
    from rnnbench import grid
    from rnnbench.executors import ClusterError
    from rnnbench.measure import Settings
    from rnnbench.results import summary
    from rnnbench.sweep import new_run, new_run_id, run_sweep

    try:
        if preset is not None and preset not in PRESETS:
            raise InputError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
        chosen = PRESETS[preset] if preset else {}
        if summary_format not in ("md", "csv", "json"):
            raise InputError(f"--format must be md, csv or json, got {summary_format!r}")
        if workers is not None and scheduler is not None:
            raise InputError("--workers and --scheduler exclude each other: start a local cluster "
                             "or use an existing one")
        if workers is not None and workers < 1:
            raise InputError(f"--workers must be at least 1, got {workers}")
        cell_list = parse_names(_option(cells_, chosen, "cells"), cells.names(), "cells")
        backend_list = parse_names(_option(backends_, chosen, "backends"), backends.names(),
                                   "backends")
        warmups = _option(warmup, chosen, "warmup")
        if warmups < 0:
            raise InputError(f"--warmup must be >= 0, got {warmups}")
        settings = Settings(
            min_time=_positive_float(_option(min_time, chosen, "min_time"), "--min-time"),
            repeats=parse_positive_ints(_option(repeats, chosen, "repeats"), "--repeats")[0],
            timeout=_positive_float(timeout, "--timeout"),
            warmup=warmups,
            models_dir=str(models), task_data=str(data) if data else None,
        )
        shortcuts = {"poly_degree": ckks_poly_degree, "scale_bits": ckks_scale_bits,
                     "refresh_every": ckks_refresh_every}
        given = [f"ckks.{key}={value}" for key, value in shortcuts.items() if value is not None]
        if given and "ckks" not in backend_list:
            raise InputError("--ckks-* options need the ckks backend in --backends")
        threads_ = parse_positive_ints(threads, "--threads")[0]
        if task is not None:
            datasets = _load_tasks(task, seq_lens, data, "--seq-lens")
            if batch is not None or input_size is not None:
                raise InputError("--batch and --input-size do not apply with --task "
                                 "(the test set sets them; see --n-eval)")
            for value, option in ((n_eval, "--n-eval"), (train_steps, "--train-steps")):
                if value is not None:
                    parse_positive_ints(value, option)
            from rnnbench.tasks.evaluate import accuracy_points

            points = accuracy_points(
                datasets, cell_list, backend_list,
                parse_positive_ints(hidden or str(DEFAULT_HIDDEN), "--hidden"), seed,
                n_eval=n_eval, threads=threads_,
                backend_params=backend_param_variants(backend_list, [*(param or []), *given]),
            )
        elif data is not None or n_eval is not None or train_steps is not None:
            raise InputError("--data, --n-eval and --train-steps apply only with --task")
        else:
            # A preset may consist of parts (e.g. one batch size per CKKS packing); each part is a grid.
            points = []
            for part in chosen.get("parts", [{}]):
                options = {**chosen, **part}
                points += grid.expand(
                    cell_list, backend_list,
                    parse_positive_ints(_option(seq_lens, options, "seq_lens"), "--seq-lens"),
                    parse_positive_ints(_option(hidden, options, "hidden"), "--hidden"),
                    parse_positive_ints(_option(batch, options, "batch"), "--batch"),
                    input_size=parse_positive_ints(_option(input_size, options, "input_size"),
                                                   "--input-size")[0],
                    threads=threads_,
                    seed=seed,
                    backend_params=backend_param_variants(
                        backend_list, [*options.get("params", []), *(param or []), *given]),
                )
        check_points(points)
        if dry_run:
            for point in points:
                print(f"{point.point_id}\t{point.label()}")
            return
        run_id = new_run_id()
        path = results_path(out, resume, run_id)
        executor = _executor(workers, scheduler)
    except InputError as exc:
        raise fail(str(exc)) from None
    except store.ResultsFileError as exc:
        raise fail(f"{exc} (left untouched)") from None

    if task is not None:
        _train_missing(points, datasets, models, train_steps)
    args = {"argv": sys.argv[1:], "preset": preset, "points": len(points),
            "executor": executor.description}
    run = new_run(run_id, args, settings)
    err.print(f"run {run['run_id']}: {len(points)} points -> {path} ({executor.description})")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=False) as progress:
        bar = progress.add_task("sweep", total=len(points))

        def on_start(todo: int) -> None:
            progress.update(bar, total=todo)

        def on_point(point: grid.Point, rows: list[dict[str, Any]]) -> None:
            status = rows[0]["status"]
            note = "" if status == "ok" else f" [{status}]"
            progress.update(bar, advance=1, description=f"{point.label()}{note}")
            if not err.is_terminal:  # logs (nohup, CI) get a line per point instead of a bar
                progress.console.print(f"{point.label()}: {status}", markup=False)

        stop = threading.Event()

        def request_stop(signum: int, frame: Any) -> None:
            """Ctrl-C or SIGTERM: tell the runner to stop waiting for the point, and interrupt."""
            stop.set()
            raise KeyboardInterrupt

        previous_handler = signal.signal(signal.SIGINT, request_stop)
        try:
            outcome = run_sweep(points, settings, path, run, resume=resume, executor=executor,
                                stop=stop, on_start=on_start, on_point=on_point)
        except KeyboardInterrupt:
            progress.stop()
            err.print(f"interrupted: points measured so far are kept in {path}; "
                      "rerun with --resume to finish")
            raise typer.Exit(130) from None
        except ClusterError as exc:
            progress.stop()
            raise fail(f"{exc}; points measured so far are kept in {path}, "
                       "rerun with --resume to finish", code=1) from None
        finally:
            signal.signal(signal.SIGINT, previous_handler)
    if outcome.skipped_done:
        err.print(f"resume: {outcome.skipped_done} points already ok in {path}")
    err.print(f"wrote {path} ({outcome.statuses})")
    if not store.exists(path):
        return
    rows, _ = store.read(path)
    rows = rows[rows["run_id"] == run["run_id"]]
    if task is not None:
        _print_table(summary.accuracy_table(rows), summary_format, summary.markdown)
    else:
        _print_table(summary.summarize(rows), summary_format, summary.format_markdown)


def _print_table(table: Any, fmt: str, markdown: Callable[[Any], str]) -> None:
    """A result table on stdout as Markdown, CSV or JSON records."""
    if fmt == "md":
        print(markdown(table))
    elif fmt == "csv":
        print(table.to_csv(index=False), end="")
    else:
        print(table.to_json(orient="records"))


def _executor(workers: int | None, scheduler: str | None) -> Executor:
    """Where the sweep's points run: in-process, a local Dask cluster, or a running one."""
    from rnnbench.executors import ClusterError, DaskCluster, Sequential

    if workers is not None or scheduler is not None:
        # Dask logs tracebacks for events that end as a point's error row or a one-line error.
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
    if workers is not None:
        err.print(f"starting a local Dask cluster of {workers} worker processes")
        return DaskCluster.local(workers)
    if scheduler is not None:
        try:
            return DaskCluster.connect(scheduler)
        except ClusterError as exc:
            raise InputError(str(exc)) from None
    return Sequential()


@app.command()
def compare(
    baseline: Annotated[Path, typer.Argument(help="Results file of the reference run.")],
    candidate: Annotated[Path, typer.Argument(help="Results file of the run to judge.")],
    min_effect: Annotated[float, typer.Option(
        help="Smallest relative change that counts (0.05: 5% slower or faster).")] = 0.05,
    alpha: Annotated[float, typer.Option(
        help="Significance level of the Mann-Whitney U test.")] = 0.01,
    output_format: Annotated[str, typer.Option("--format", help="md, csv or json.")] = "md",
) -> None:
    """Compare two runs point by point; exit 1 if any point is significantly worse or failed."""
    from rnnbench.results import compare as comparison

    try:
        if output_format not in ("md", "csv", "json"):
            raise InputError(f"--format must be md, csv or json, got {output_format!r}")
        if not min_effect >= 0:
            raise InputError(f"--min-effect must be zero or positive, got {min_effect}")
        if not 0 < alpha < 1:
            raise InputError(f"--alpha must be between 0 and 1, got {alpha}")
        base, _ = store.read(baseline)
        cand, _ = store.read(candidate)
    except InputError as exc:
        raise fail(str(exc)) from None
    except store.ResultsFileError as exc:
        raise fail(str(exc)) from None

    try:
        table = comparison.compare(base, cand, alpha=alpha, min_effect=min_effect)
    except comparison.MixedMachines as exc:
        raise fail(str(exc)) from None
    summary = comparison.summarize(table, alpha)
    note = comparison.environment_note(base, cand)
    if note:
        err.print(f"note: {note}", markup=False)
    if summary["underpowered"]:
        err.print(f"note: {summary['underpowered']} points have too few samples to reach "
                  f"p < {alpha:g} (raise --repeats)", markup=False)
    if output_format == "md":
        print(comparison.format_markdown(table, summary))
    elif output_format == "csv":
        print(table.to_csv(index=False), end="")
        err.print(comparison.summary_line(summary), markup=False)
    else:
        print(json.dumps({"summary": summary, "points": json.loads(table.to_json(orient="records"))}))
    if summary["regressed"]:
        raise typer.Exit(1)


@app.command()
def merge(
    inputs: Annotated[list[Path], typer.Argument(help="Results files or directories of them.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The merged results file.")],
    force: Annotated[bool, typer.Option(
        help="Replace an existing output file that is not one of the inputs.")] = False,
) -> None:
    """Combine results files (checking their schema versions) into one, keeping every run."""
    paths = store.results_files(inputs)
    try:
        if not paths:
            raise InputError("no results files among the inputs")
        if out.exists() and not force and out.resolve() not in {p.resolve() for p in paths}:
            raise InputError(f"{out} exists and is not one of the inputs; "
                             "use --force to replace it, or list it as an input to add to it")
        table, metadata = store.merge(paths)
        store.write(out, table, metadata)
    except InputError as exc:
        raise fail(str(exc)) from None
    except store.ResultsFileError as exc:
        raise fail(f"{exc}; nothing written") from None
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc.strerror or exc}") from None
    err.print(f"merged {len(paths)} files ({len(metadata['runs'])} runs, {table.num_rows} rows) "
              f"-> {out}")


@app.command()
def dashboard(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Results files or directories (default: results/).", show_default=False)] = None,
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8501,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "localhost",
) -> None:
    """Serve the results dashboard (Streamlit) and print its URL on stdout; Ctrl-C stops it."""
    import os
    import signal
    import socket
    import subprocess
    import urllib.request

    import dashboard as dashboard_package
    from dashboard.data import RESULTS_ENV

    paths = paths or [Path("results")]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise fail(f"no such file or directory: {', '.join(missing)}")
    if not 1 <= port <= 65535:
        raise fail(f"--port must be between 1 and 65535, got {port}")
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise fail(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from None
    package_dir = Path(dashboard_package.__file__).resolve().parent
    python_path = [str(package_dir.parent), os.environ.get("PYTHONPATH")]  # `import dashboard` works
    env = {**os.environ, RESULTS_ENV: os.pathsep.join(str(p.resolve()) for p in paths),
           "PYTHONPATH": os.pathsep.join(filter(None, python_path))}
    command = [sys.executable, "-m", "dashboard.serve", "run", str(package_dir / "app.py"),
               "--server.port", str(port), "--server.address", host, "--server.headless", "true",
               "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
               "--client.toolbarMode", "viewer"]
    url = f"http://{host}:{port}/"
    server = subprocess.Popen(command, env=env, stdout=sys.stderr, stderr=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` stops the server too (finally below)
    try:
        deadline = time.monotonic() + 120
        while server.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        if server.poll() is not None:
            raise fail(f"the dashboard server exited with status {server.returncode} (see above)", 1)
        print(url, flush=True)
        err.print(f"dashboard on {url} (Ctrl-C stops it)")
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()


@app.command()
def report(
    results: Annotated[list[Path], typer.Argument(help="Results files or directories.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path("report.html"),
) -> None:
    """Write every dashboard chart into one self-contained HTML file (opens offline)."""
    from dashboard.data import file_signature
    from dashboard.report import build_report, write_report

    files, problems = file_signature(results)
    missing = [p for p in problems if p.endswith("no such file or directory")]
    if missing:
        raise fail(missing[0])
    rows, runs, unreadable = store.read_many(path for path, _, _ in files)
    problems += unreadable
    if rows.empty:
        raise fail(f"no readable results in {', '.join(map(str, results))}"
                   + (f" ({problems[0]})" if problems else ""))
    for problem in problems:
        err.print(f"rnnbench: warning: skipped {problem}", markup=False, soft_wrap=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=err, transient=True) as progress:
        from dashboard.charts import CHARTS

        task = progress.add_task("report", total=len(CHARTS))
        document = build_report(rows, runs, problems,
                                on_chart=lambda title: progress.update(task, advance=1, description=title))
    try:
        write_report(out, document)
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc.strerror or exc}") from None
    err.print(f"wrote {out} ({len(rows)} rows, {len(CHARTS)} charts)")
    print(out)


def _load_tasks(task: str, seq_lens: str | None, data: Path | None, option: str) -> list[TaskData]:
    """The task at each sequence length given with ``option`` (default: the task's own)."""
    from rnnbench import tasks

    lengths: list[int | None] = (
        list(parse_positive_ints(seq_lens, option)) if seq_lens is not None else [None])
    try:
        return [tasks.load(task, seq_len, data) for seq_len in lengths]
    except tasks.TaskError as exc:
        raise InputError(str(exc)) from None


def train_models(
    jobs: list[tuple[TaskData, str, int, int]],
    config_for: Callable[[TaskData], TrainConfig],
    models_dir: Path,
    on_trained: Callable[..., None] | None = None,
) -> None:
    """Train and save each ``(data, cell, hidden, seed)`` with a progress bar showing the loss.

    ``config_for(data)`` gives the job's :class:`TrainConfig`; ``on_trained(data, cell, hidden,
    seed, config, checkpoint, trained)`` runs after each model is saved.
    """
    from rnnbench.tasks import training

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        for data, cell, hidden, seed in jobs:
            config = config_for(data)
            label = f"train {data.tag} {cell} T={data.seq_len} H={hidden} seed={seed}"
            bar = progress.add_task(label, total=config.steps)

            def on_step(step: int, loss: float, bar: Any = bar, label: str = label) -> None:
                progress.update(bar, completed=step, description=f"{label} loss {loss:.4g}")

            checkpoint, trained = training.train_and_save(data, cell, hidden, seed, config,
                                                          models_dir, on_step=on_step)
            result = f"{label} test {data.objective.metric} {trained.final.test_metric:.4g}"
            progress.update(bar, description=result)
            # A log line too, so that runs without a terminal (nohup, CI) show progress.
            progress.console.print(f"{result} ({trained.final.cpu_s:.0f} s CPU) -> {checkpoint}",
                                   markup=False, highlight=False)
            if on_trained:
                on_trained(data, cell, hidden, seed, config, checkpoint, trained)


def _train_missing(points: list[Point], datasets: list[TaskData], models_dir: Path,
                   steps: int | None) -> None:
    """Train the models the accuracy points need but lack (``steps``: each task's default)."""
    from rnnbench.tasks import checkpoints
    from rnnbench.tasks.training import TrainConfig

    by_key = {(d.tag, d.seq_len): d for d in datasets}
    jobs = []
    for p in points:
        job = (by_key[(p.task, p.seq_len)], p.cell, p.hidden_size, p.seed)
        path = checkpoints.path_for(models_dir, p.task, p.cell, p.seq_len, p.hidden_size, p.seed)
        if job not in jobs and not checkpoints.sidecar_path(path).exists():
            jobs.append(job)
    if jobs:
        err.print(f"training {len(jobs)} missing models into {models_dir}")
        train_models(jobs, lambda data: TrainConfig.for_task(data, steps), models_dir)


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
    lr: Annotated[float, typer.Option(help="Peak learning rate of Adam.")] = 2e-3,
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
) -> None:
    """Train each cell with a linear readout on a task with one fixed budget; save checkpoints."""
    import pandas as pd
    import torch

    from rnnbench.files import check_writable
    from rnnbench.results import summary
    from rnnbench.sweep import new_run, new_run_id
    from rnnbench.tasks import training

    try:
        if summary_format not in ("md", "csv", "json"):
            raise InputError(f"--format must be md, csv or json, got {summary_format!r}")
        cell_list = parse_names(cells_, cells.names(), "cells")
        datasets = _load_tasks(task, seq_len, data, "--seq-len")
        hidden_sizes = parse_positive_ints(hidden, "--hidden")
        seeds = parse_seeds(seed)
        for value, option in ((steps, "--steps"), (batch_size, "--batch-size"),
                              (threads, "--threads")):
            if value is not None:
                parse_positive_ints(value, option)
        if curve_every < 0:
            raise InputError(f"--curve-every must be 0 or positive, got {curve_every}")
        _positive_float(lr, "--lr")
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
        return training.TrainConfig.for_task(task_data, steps, batch_size=batch_size, lr=lr,
                                             curve_every=curve_every, lstm_forget_bias=lstm_forget_bias)

    run = new_run(run_id, {"argv": sys.argv[1:], "command": "train"},
                  {"threads": threads, "train": asdict(config_for(datasets[0]))})
    trained_models: list[dict[str, Any]] = []

    def on_trained(task_data, cell, hidden_size, model_seed, config, checkpoint, trained) -> None:
        rows = training.curve_rows(task_data, cell, hidden_size, model_seed, config, trained)
        store.append(path, rows, run)
        trained_models.append({
            "task": task_data.tag, "cell": cell, "seq_len": task_data.seq_len,
            "hidden_size": hidden_size, "seed": model_seed, "steps": config.steps,
            "metric": task_data.objective.metric, "metric_value": trained.final.test_metric,
            "train_loss": trained.final.train_loss, "train_cpu_s": trained.final.cpu_s,
            "checkpoint": str(checkpoint),
        })

    jobs = [(d, c, h, s) for d in datasets for h in hidden_sizes for s in seeds for c in cell_list]
    err.print(f"run {run['run_id']}: training {len(jobs)} models on {training.default_device()} "
              f"-> {models}, curves -> {path}")
    try:
        train_models(jobs, config_for, models, on_trained)
    except KeyboardInterrupt:
        err.print(f"interrupted: finished models are kept in {models}")
        raise typer.Exit(130) from None
    _print_table(pd.DataFrame(trained_models), summary_format, summary.markdown)


@app.command("env")
def env_command() -> None:
    """Print, as JSON, the environment recorded with every run."""
    print(json.dumps(env.collect(), indent=2, default=str))


def main() -> None:
    """Entry point: argument-parsing errors become one line too, never a traceback."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=sys.argv[1:], prog_name="rnnbench", standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("rnnbench: aborted")
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: bad option names or values
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if message:  # (no message: the help was shown for a bare command)
            err.print(f"rnnbench: error: {message}", markup=False, soft_wrap=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
