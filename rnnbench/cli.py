"""The ``rnnbench`` command line: thin Typer commands that parse, validate and delegate.

Errors in the user's input end with one line on stderr and exit status 2; progress
goes to stderr, so stdout carries only machine-readable output.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rnnbench import backends, cells, env, store
from rnnbench.presets import PRESETS

if TYPE_CHECKING:
    from rnnbench.executors import Executor

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
) -> None:
    """Measure cells x backends x sizes; write Parquet rows and print a summary table."""
    from rnnbench import grid, summary
    from rnnbench.executors import ClusterError
    from rnnbench.runner import Settings
    from rnnbench.sweep import check_writable, new_run, resolve_output, run_sweep

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
        )
        shortcuts = {"poly_degree": ckks_poly_degree, "scale_bits": ckks_scale_bits,
                     "refresh_every": ckks_refresh_every}
        given = [f"ckks.{key}={value}" for key, value in shortcuts.items() if value is not None]
        if given and "ckks" not in backend_list:
            raise InputError("--ckks-* options need the ckks backend in --backends")
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
                threads=parse_positive_ints(threads, "--threads")[0],
                seed=seed,
                backend_params=backend_param_variants(
                    backend_list, [*options.get("params", []), *(param or []), *given]),
            )
        check_points(points)
        if dry_run:
            for point in points:
                print(f"{point.point_id}\t{point.label()}")
            return
        path = resolve_output(out, resume)
        try:
            check_writable(path)
        except OSError as exc:
            raise InputError(f"cannot write results to {out}: {exc.strerror or exc}") from None
        if path.exists():
            store.read_table(path)  # refuse to touch a file we cannot read back
        executor = _executor(workers, scheduler)
    except InputError as exc:
        raise fail(str(exc)) from None
    except store.ResultsFileError as exc:
        raise fail(f"{exc} (left untouched)") from None

    args = {"argv": sys.argv[1:], "preset": preset, "points": len(points),
            "executor": executor.description}
    run = new_run(args, settings)
    err.print(f"run {run['run_id']}: {len(points)} points -> {path} ({executor.description})")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=False) as progress:
        task = progress.add_task("sweep", total=len(points))

        def on_start(todo: int) -> None:
            progress.update(task, total=todo)

        def on_point(point: grid.Point, rows: list[dict[str, Any]]) -> None:
            status = rows[0]["status"]
            note = "" if status == "ok" else f" [{status}]"
            progress.update(task, advance=1, description=f"{point.label()}{note}")

        try:
            outcome = run_sweep(points, settings, path, run, resume=resume, executor=executor,
                                on_start=on_start, on_point=on_point)
        except KeyboardInterrupt:
            progress.stop()
            err.print(f"interrupted: points measured so far are kept in {path}; "
                      "rerun with --resume to finish")
            raise typer.Exit(130) from None
        except ClusterError as exc:
            progress.stop()
            raise fail(f"{exc}; points measured so far are kept in {path}, "
                       "rerun with --resume to finish", code=1) from None
    if outcome.skipped_done:
        err.print(f"resume: {outcome.skipped_done} points already ok in {path}")
    err.print(f"wrote {path} ({outcome.statuses})")
    if not path.exists():
        return
    rows, _ = store.read(path)
    table = summary.summarize(rows[rows["run_id"] == run["run_id"]])
    if summary_format == "md":
        print(summary.format_markdown(table))
    elif summary_format == "csv":
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
    from rnnbench import compare as comparison

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

    table = comparison.compare(base, cand, alpha=alpha, min_effect=min_effect)
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
