"""``rnnbench tune``: the same tuning grid for every cell on the adding problem, then
optionally the longest sequence each cell's best setting solves within a CPU budget."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from rnnbench import cells
from rnnbench.cli.common import (
    DEFAULT_HIDDEN,
    InputError,
    app,
    check_format,
    check_int,
    check_positive_float,
    err,
    fail,
    parse_ints,
    parse_list,
    parse_names,
    print_table,
    results_path,
    write_failure,
)
from rnnbench.results import store

if TYPE_CHECKING:
    from rnnbench.tasks.training import TrainConfig
    from rnnbench.tasks.tuning import Trial


@dataclass(frozen=True)
class TunePlan:
    """What ``tune`` runs: the grid of each cell not given a setting, then the longest-T search."""

    cells: list[str]
    base: TrainConfig  # the grid's budget: steps, batch, curve interval
    seq_len: int  # the grid's T
    hidden: int
    seed: int
    threads: int
    lrs: list[float]
    forget_biases: list[float]
    given: dict[str, TrainConfig]  # cells whose setting was given (--setting): no grid for them
    longest_t: list[int]  # ascending; empty: no search
    budget_cpu_s: float

    @property
    def grid_cells(self) -> list[str]:
        return [c for c in self.cells if c not in self.given]


def parse_floats(value: str, option: str, positive: bool = True) -> list[float]:
    """``"1e-3,2e-3"`` -> ``[0.001, 0.002]``: finite numbers (positive unless told), duplicates removed."""

    def check(number: float, item: str) -> float:
        if positive:
            check_positive_float(number, option)
        elif not math.isfinite(number):
            raise InputError(f"{option} must be finite, got {item}")
        return number

    return parse_list(value, option, float, "number", "1e-3,2e-3", check)


def parse_setting(item: str, base: TrainConfig, valid_cells: list[str]) -> tuple[str, TrainConfig]:
    """``CELL=LR`` or ``lstm=LR:FORGET_BIAS`` -> the cell and its configuration."""
    cell, sep, value = item.partition("=")
    cell = cell.strip()
    if not sep:
        raise InputError(f"--setting {item!r}: expected CELL=LR or lstm=LR:FORGET_BIAS")
    if cell not in valid_cells:
        raise InputError(f"--setting {item!r}: {cell!r} is not one of --cells ({', '.join(valid_cells)})")
    lr, colon, bias = value.partition(":")
    if colon and cell != "lstm":
        raise InputError(f"--setting {item!r}: only the LSTM has a forget-gate bias")

    def one(text: str, positive: bool) -> float:
        numbers = parse_floats(text, f"--setting {cell}", positive)
        if len(numbers) != 1:
            raise InputError(f"--setting {item!r}: one value each (the grid is --lrs, --forget-biases)")
        return numbers[0]

    config = replace(base, lr=one(lr, True))
    return cell, replace(config, lstm_forget_bias=one(bias, False)) if colon else config


def plan_tune(cells_: str, seq_len: int, hidden: int, steps: int, batch_size: int, curve_every: int,
              seed: int, threads: int, lrs: str, forget_biases: str, settings: list[str],
              longest_t: str | None, budget_cpu_min: float, summary_format: str) -> TunePlan:
    """Check every option; :class:`InputError` (one line) for bad input, before anything runs."""
    from rnnbench.tasks.training import TrainConfig

    check_format(summary_format)
    cell_list = parse_names(cells_, cells.names(), "cells")
    for value, option, minimum in ((seq_len, "--seq-len", 2), (hidden, "--hidden", 1),
                                   (steps, "--steps", 1), (batch_size, "--batch-size", 1),
                                   (curve_every, "--curve-every", 0), (seed, "--seed", 0),
                                   (threads, "--threads", 1)):
        check_int(value, option, minimum)
    check_positive_float(budget_cpu_min, "--budget-cpu-min")
    base = TrainConfig(steps=steps, batch_size=batch_size, curve_every=curve_every)
    given = dict(parse_setting(item, base, cell_list) for item in settings)
    # The adding problem needs a marker in each half: T >= 2.
    lengths = sorted(parse_ints(longest_t, "--longest-t", minimum=2)) if longest_t is not None else []
    return TunePlan(cell_list, base, seq_len, hidden, seed, threads, parse_floats(lrs, "--lrs"),
                    parse_floats(forget_biases, "--forget-biases", positive=False), given, lengths,
                    budget_cpu_min * 60.0)


class TuningBars:
    """Progress on stderr: a bar per training (steps, or CPU seconds of a budget) and a log
    line; each finished trial is handed to ``record(stage, trial)``."""

    def __init__(self, progress: Progress, record: Callable[[str, Trial], None]) -> None:
        self.progress, self.record = progress, record
        self.stage = "grid"
        self.bar: TaskID | None = None
        self.budget: float | None = None
        self.cpu0 = 0.0
        self.label = ""

    def started(self, cell: str, seq_len: int, config: TrainConfig) -> None:
        self.budget, self.cpu0 = config.max_cpu_s, time.process_time()
        bias = f" forget bias {config.lstm_forget_bias:g}" if cell == "lstm" else ""
        self.label = f"{cell} T={seq_len} lr {config.lr:g}{bias}"
        unit = "CPU s" if self.budget is not None else "steps"
        total = self.budget if self.budget is not None else config.steps
        self.bar = self.progress.add_task(f"{self.label} ({unit})", total=total)

    def step(self, step: int, loss: float) -> None:
        done = time.process_time() - self.cpu0 if self.budget is not None else step
        self.progress.update(self.bar, completed=done, description=f"{self.label} loss {loss:.4g}")

    def finished(self, trial: Trial) -> None:
        self.progress.update(self.bar, completed=self.progress.tasks[-1].total, description=self.label)
        solved = f"solved at {trial.solved_at_cpu_s:.3g} CPU s" if trial.solved_at_cpu_s is not None \
            else "not solved"
        self.progress.console.print(f"{self.label}: test MSE {trial.final_mse:.4g}, {solved}, "
                                    f"{trial.steps} steps in {trial.cpu_s:.3g} CPU s",
                                    markup=False, highlight=False)
        self.record(self.stage, trial)


def trial_table(stages: list[tuple[str, Trial, bool]]):  # -> pd.DataFrame
    """One line per trial: stage, setting, what it reached; ``chosen`` marks each cell's best
    grid setting and each T solved within the budget."""
    import pandas as pd

    return pd.DataFrame([{
        "stage": stage, "cell": t.cell, "seq_len": t.seq_len, "lr": t.config.lr,
        "lstm_forget_bias": t.config.lstm_forget_bias if t.cell == "lstm" else None,
        "test_mse": t.final_mse, "solved_at_cpu_s": t.solved_at_cpu_s, "cpu_s": t.cpu_s,
        "steps": t.steps, "steps_per_cpu_s": t.steps_per_s, "chosen": chosen,
    } for stage, t, chosen in stages])


@app.command()
def tune(
    cells_: Annotated[str, typer.Option("--cells", help="Comma list of cells.")] = "gru,lstm,reluadd",
    seq_len: Annotated[int, typer.Option(help="T of the tuning grid's runs.")] = 100,
    hidden: Annotated[int, typer.Option(help="Hidden size.")] = DEFAULT_HIDDEN,
    steps: Annotated[int, typer.Option(help="Optimizer steps of each grid run.")] = 2000,
    batch_size: Annotated[int, typer.Option(help="Sequences per optimizer step.")] = 64,
    curve_every: Annotated[int, typer.Option(
        help="Test MSE every N steps (when 'solved' is checked; 0: 20 points per run).")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of every model and its training stream.")] = 0,
    lrs: Annotated[str, typer.Option(help="The grid's peak learning rates.")] = "1e-3,2e-3,5e-3",
    forget_biases: Annotated[str, typer.Option(
        help="The grid's LSTM forget-gate biases (added at initialisation).")] = "0,1",
    setting: Annotated[list[str] | None, typer.Option(
        help="CELL=LR or lstm=LR:FORGET_BIAS: that cell's setting, no grid for it (repeatable).")
    ] = None,
    longest_t: Annotated[str | None, typer.Option(
        help="Then search these T (e.g. 100,200,400,800) for the longest each cell's best setting "
             "solves within the budget, each run training until solved or out of budget.")] = None,
    budget_cpu_min: Annotated[float, typer.Option(help="CPU minutes per run of the search.")] = 15.0,
    threads: Annotated[int, typer.Option(help="Torch threads for training (recorded).")] = 1,
    out: Annotated[Path, typer.Option(
        help="Results directory (a new file) or a .parquet file (appended).")] = Path("results"),
    summary_format: Annotated[str, typer.Option(
        "--format", help="Table of trials on stdout: md, csv or json.")] = "md",
) -> None:
    """Tune every cell with the same small grid on the adding problem (best: solved earliest in
    CPU time), then optionally find the longest T each one solves within a CPU budget."""
    import torch

    from rnnbench import tasks
    from rnnbench.results import queries
    from rnnbench.sweep import new_run, new_run_id
    from rnnbench.tasks import tuning

    try:
        plan = plan_tune(cells_, seq_len, hidden, steps, batch_size, curve_every, seed, threads, lrs,
                         forget_biases, setting or [], longest_t, budget_cpu_min, summary_format)
        run_id = new_run_id()
        path = results_path(out, resume=False, run_id=run_id)
    except InputError as exc:
        raise fail(str(exc)) from None
    except store.ResultsFileError as exc:
        raise fail(f"{exc} (left untouched)") from None

    torch.set_num_threads(plan.threads)
    run = new_run(run_id, {"argv": sys.argv[1:], "command": "tune"}, {
        "threads": plan.threads, "train": asdict(plan.base), "lrs": plan.lrs,
        "forget_biases": plan.forget_biases, "given": {c: asdict(v) for c, v in plan.given.items()},
        "longest_t": plan.longest_t, "budget_cpu_s": plan.budget_cpu_s})
    stages: list[tuple[str, Trial, bool]] = []

    def record(stage: str, trial: Trial) -> None:
        rows = tuning.trial_rows(trial, plan.hidden, plan.seed, tasks.adding.INPUT_SIZE, plan.threads, stage)
        try:
            store.append(path, rows, run)
        except OSError as exc:
            raise write_failure(path, exc) from None

    err.print(f"run {run_id}: tuning {', '.join(plan.cells)} on the adding problem -> {path}")
    best = dict(plan.given)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      console=err) as progress:
            bars = TuningBars(progress, record)
            data = tasks.load("adding", plan.seq_len)
            for cell in plan.grid_cells:
                trials = tuning.tune(data, cell, plan.hidden, plan.seed, plan.base, bars,
                                     lrs=plan.lrs, forget_biases=plan.forget_biases)
                winner = tuning.best(trials)
                best[cell] = winner.config
                stages += [("grid", t, t is winner) for t in trials]
            if plan.longest_t:
                bars.stage = "longest_t"
                _, trials = tuning.longest_solved(
                    lambda t: tasks.load("adding", t), {c: best[c] for c in plan.cells}, plan.hidden,
                    plan.seed, plan.longest_t, plan.budget_cpu_s, bars)
                stages += [("longest_t", t, t.solved_within(plan.budget_cpu_s)) for t in trials]
    except KeyboardInterrupt:
        err.print(f"interrupted: finished trials are kept in {path}")
        raise typer.Exit(130) from None
    print_table(trial_table(stages), summary_format, queries.markdown)
