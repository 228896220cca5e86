"""The measurement protocol: how one point is measured, in whatever process runs it.

The reference cell is built from the point's seed, the backend prepares it (timed
separately), its outputs are checked against the reference module, the number of
loops is calibrated so one sample lasts well above the timer's resolution, and
warm-up samples (kept, flagged ``is_warmup``) are followed by timed samples until
both a minimum count and a minimum total time are reached (a backend may declare
that its first run, the accuracy run, is a timed sample). A point with a ``task``
instead scores its trained checkpoint on the task's test set under the backend (one
row, ``kind = "accuracy"``; see :mod:`rnnbench.tasks.evaluate`).

:func:`measure_point` never raises for a point's failure: anything that goes wrong,
including rows the schema cannot hold, becomes one row with a ``status`` and an
error message. Where the process runs is :mod:`rnnbench.runner`'s business.
"""

from __future__ import annotations

import datetime as dt
import math
import resource
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnbench import backends
from rnnbench.cells import Weights, make_cell
from rnnbench.grid import Point
from rnnbench.results.rows import Row, RowError, cost_columns, failure_row, now, point_row, validate
from rnnbench.results.stats import error_metrics


@dataclass(frozen=True)
class Settings:
    """How to measure: the same for every point of a sweep, recorded with the run."""

    min_time: float = 0.2  # seconds of timed samples per point, at least
    repeats: int = 5  # timed samples per point, at least
    max_repeats: int = 50  # at most (unless ``repeats`` asks for more); longer samples meet min_time
    warmup: int = 1  # samples taken first and flagged is_warmup
    sample_time: float = 0.01  # each sample runs enough loops to last this long
    timeout: float = 120.0  # hard limit per point, child process killed after it
    models_dir: str = "models"  # accuracy points: where the trained checkpoints are
    task_data: str | None = None  # accuracy points: a user's data file for the task


def make_inputs(point: Point, calibration: bool = False, sequences: int = 0) -> np.ndarray:
    """The point's input sequences [T, B, I]: standard normal from the point's seed.

    ``calibration=True`` gives an independent draw of the same distribution, so backends
    that calibrate (the integer ones) are not calibrated on the very inputs they are measured on;
    ``sequences``: at least that many sequences (``Backend.calibration_sequences``).
    """
    rng = np.random.default_rng((point.seed, 1) if calibration else point.seed)
    shape = (point.seq_len, max(point.batch_size, sequences), point.input_size)
    return rng.standard_normal(shape).astype(np.float32)


def set_threads(threads: int) -> None:
    """Limit every thread pool the backends use (torch and its oneDNN, BLAS) to ``threads``.

    Numba's is left alone: no kernel here runs in parallel, and starting numba's OpenMP
    layer (``numba.set_num_threads`` does) resets the OpenMP thread count that torch
    set, after which PyTorch's LSTM (oneDNN) ran on two threads in "one thread" points.
    """
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)


def _time_loops(run: Callable[[np.ndarray], Any], x: np.ndarray, loops: int) -> tuple[float, float]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(loops):
        run(x)
    return time.perf_counter() - wall0, time.process_time() - cpu0


def calibrate_loops(run: Callable[[np.ndarray], Any], x: np.ndarray, sample_time: float) -> int:
    """Loops per sample so that one sample lasts at least ``sample_time`` (like timeit's autorange)."""
    loops = 1
    while True:
        wall, _ = _time_loops(run, x, loops)
        if wall >= sample_time:
            return loops
        loops = max(loops * 2, math.ceil(loops * 1.2 * sample_time / max(wall, 1e-9)))


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(point: Point, settings: Settings) -> list[Row]:
    """Measure ``point`` in this process; returns its rows (one per sample). May raise."""
    import torch

    backend = backends.get(point.backend)
    params = point.backend_params
    reason = backend.skip_reason(point.cell, params)
    if reason:
        return [failure_row(point, "skipped", "Unsupported", reason)]
    set_threads(point.threads)
    if point.task:
        return [accuracy_row(point, backend, settings)]
    module = make_cell(point.cell, point.input_size, point.hidden_size, seed=point.seed)
    x = make_inputs(point)
    with torch.inference_mode():
        reference, _ = module(torch.from_numpy(x))
    reference = reference.numpy()

    start = time.perf_counter()
    calibration = make_inputs(point, calibration=True, sequences=backend.calibration_sequences)
    prepared = backend.prepare_for(Weights.from_module(module), params, calibration, point.batch_size,
                                   threads=point.threads)
    prepare_time = time.perf_counter() - start
    first_started = now()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    out = prepared.run(x)
    first = (time.perf_counter() - wall0, time.process_time() - cpu0)
    accuracy = {**error_metrics(out, reference), **error_metrics(out[-1], reference[-1], "final_")}

    warmup = min(settings.warmup, backend.sample_cap.get("warmup", settings.warmup))
    max_repeats = max(settings.max_repeats, settings.repeats)
    max_repeats = min(max_repeats, backend.sample_cap.get("repeats", max_repeats))
    # Samples last longer rather than multiply when --min-time needs more than max_repeats of them.
    sample_time = max(settings.sample_time, settings.min_time / max_repeats)
    # A first run that already lasts a sample needs no calibration runs (CKKS runs take seconds).
    loops = 1 if first[0] >= sample_time else calibrate_loops(prepared.run, x, sample_time)
    samples: list[tuple[bool, dt.datetime, float, float]] = []
    if backend.first_run_is_sample and loops == 1 and not warmup:
        samples.append((False, first_started, *first))
    for _ in range(warmup):
        samples.append((True, now(), *_time_loops(prepared.run, x, loops)))
    measured = sum(wall for warm, _, wall, _ in samples if not warm)
    while len(samples) - warmup < max_repeats and (
        len(samples) - warmup < settings.repeats or measured < settings.min_time
    ):
        started = now()
        wall, cpu = _time_loops(prepared.run, x, loops)
        samples.append((False, started, wall, cpu))
        measured += wall

    common = point_row(point, "timing", loops=loops, prepare_time_s=prepare_time,
                       peak_rss_bytes=_peak_rss(), **cost_columns(point), **accuracy,
                       **prepared.facts())
    return [
        {**common, "repeat_idx": i, "is_warmup": warm, "started_at": started,
         "wall_time_s": wall, "cpu_time_s": cpu,
         "time_per_step_s": wall / loops / point.seq_len}
        for i, (warm, started, wall, cpu) in enumerate(samples)
    ]


def accuracy_row(point: Point, backend: backends.Backend, settings: Settings) -> Row:
    """The one row of an accuracy point: its trained model scored under its backend."""
    from rnnbench.tasks.evaluate import evaluate_point

    started = now()
    facts = evaluate_point(point, backend, settings.models_dir, settings.task_data)
    return point_row(point, "accuracy", started_at=started, peak_rss_bytes=_peak_rss(),
                     **cost_columns(point), **facts)


def measure_point(point: Point, settings: Settings) -> list[Row]:
    """:func:`measure`, with every failure of the point (and rows the schema cannot hold) as a row."""
    try:
        rows = measure(point, settings)
        validate(rows)
    except backends.Unsupported as exc:  # found out only while preparing (e.g. sizes too large)
        return [failure_row(point, "skipped", "Unsupported", str(exc))]
    except RowError as exc:
        return [failure_row(point, "error", "BadRow", f"backend {point.backend!r}: {exc}")]
    except Exception as exc:  # a point's failure is data, not a crash
        detail = traceback.format_exception_only(exc)[-1].strip()
        return [failure_row(point, "error", type(exc).__name__, detail)]
    return rows
