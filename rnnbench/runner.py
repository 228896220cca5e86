"""Run one point in a child process with a hard timeout and return its results rows.

The child builds the reference cell from the point's seed, prepares the backend
(timed separately), checks the backend's outputs against the reference module,
calibrates the number of loops so one sample lasts well above the timer's
resolution, and takes warm-up samples (kept, flagged ``is_warmup``) followed by
timed samples until both a minimum count and a minimum total time are reached
(a backend may declare that its first run, the accuracy run, is a timed sample).
A point with a ``task`` instead scores its trained checkpoint on the task's test set
under the backend (one row, ``kind = "accuracy"``; see :mod:`rnnbench.tasks.evaluate`).
Anything that goes wrong becomes one row with a ``status`` and an error message;
the runner never raises for a point's failure. It knows nothing about the CLI.
"""

from __future__ import annotations

import datetime as dt
import math
import multiprocessing as mp
import multiprocessing.connection
import os
import resource
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnbench import backends, env
from rnnbench.cells import Weights, make_cell
from rnnbench.cells.costs import step_cost
from rnnbench.grid import Point
from rnnbench.results.stats import error_metrics

# Imported by the fork server once, so every point's child starts with them loaded.
_PRELOAD = ["rnnbench.runner", "rnnbench.backends.float32", "rnnbench.backends.pytorch",
            "rnnbench.backends.onnxrt", "rnnbench.backends.integer.backend",
            "rnnbench.backends.ckks", "rnnbench.tasks.evaluate"]


@dataclass(frozen=True)
class Settings:
    """How to measure: the same for every point of a sweep, recorded with the run."""

    min_time: float = 0.2  # seconds of timed samples per point, at least
    repeats: int = 5  # timed samples per point, at least
    max_repeats: int = 50
    warmup: int = 1  # samples taken first and flagged is_warmup
    sample_time: float = 0.01  # each sample runs enough loops to last this long
    timeout: float = 120.0  # hard limit per point, child process killed after it
    models_dir: str = "models"  # accuracy points: where the trained checkpoints are
    task_data: str | None = None  # accuracy points: a user's data file for the task


def make_inputs(point: Point, calibration: bool = False) -> np.ndarray:
    """The point's input sequences [T, B, I]: standard normal from the point's seed.

    ``calibration=True`` gives an independent draw of the same distribution, so backends
    that calibrate (the integer ones) are not calibrated on the very inputs they are measured on.
    """
    rng = np.random.default_rng((point.seed, 1) if calibration else point.seed)
    shape = (point.seq_len, point.batch_size, point.input_size)
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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _kind(point: Point) -> str:
    return "accuracy" if point.task else "timing"


def failure_row(point: Point, status: str, error_type: str, message: str) -> dict[str, Any]:
    """The single row that records a point that did not produce samples."""
    return {
        **point.columns(), "kind": _kind(point), "status": status, "error_type": error_type,
        "error_message": message, "started_at": _now(), **step_cost(
            point.cell, point.input_size, point.hidden_size).columns(), **env.provenance(),
    }


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


def measure(point: Point, settings: Settings) -> list[dict[str, Any]]:
    """Measure ``point`` in this process; returns its rows (one per sample)."""
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
    calibration = make_inputs(point, calibration=True)
    prepared = backend.prepare(Weights.from_module(module), params, calibration, threads=point.threads)
    prepare_time = time.perf_counter() - start
    first_started = _now()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    out = prepared.run(x)
    first = (time.perf_counter() - wall0, time.process_time() - cpu0)
    accuracy = {**error_metrics(out, reference), **error_metrics(out[-1], reference[-1], "final_")}

    # A first run that already lasts a sample needs no calibration runs (CKKS runs take seconds).
    loops = 1 if first[0] >= settings.sample_time else calibrate_loops(prepared.run, x, settings.sample_time)
    warmup = min(settings.warmup, backend.sample_cap.get("warmup", settings.warmup))
    max_repeats = min(settings.max_repeats, backend.sample_cap.get("repeats", settings.max_repeats))
    samples: list[tuple[bool, dt.datetime, float, float]] = []
    if backend.first_run_is_sample and loops == 1 and not warmup:
        samples.append((False, first_started, *first))
    for _ in range(warmup):
        samples.append((True, _now(), *_time_loops(prepared.run, x, loops)))
    measured = sum(wall for warm, _, wall, _ in samples if not warm)
    while len(samples) - warmup < max_repeats and (
        len(samples) - warmup < settings.repeats or measured < settings.min_time
    ):
        started = _now()
        wall, cpu = _time_loops(prepared.run, x, loops)
        samples.append((False, started, wall, cpu))
        measured += wall

    common = {
        **point.columns(), "kind": "timing", "status": "ok", "loops": loops,
        "prepare_time_s": prepare_time,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        **step_cost(point.cell, point.input_size, point.hidden_size).columns(),
        **accuracy, **prepared.facts(), **env.provenance(),
    }
    return [
        {**common, "repeat_idx": i, "is_warmup": warm, "started_at": started,
         "wall_time_s": wall, "cpu_time_s": cpu,
         "time_per_step_s": wall / loops / point.seq_len}
        for i, (warm, started, wall, cpu) in enumerate(samples)
    ]


def accuracy_row(point: Point, backend: backends.Backend, settings: Settings) -> dict[str, Any]:
    """The one row of an accuracy point: its trained model scored under its backend."""
    from rnnbench.tasks.evaluate import evaluate_point

    started = _now()
    facts = evaluate_point(point, backend, settings.models_dir, settings.task_data)
    return {
        **point.columns(), "kind": "accuracy", "status": "ok", "started_at": started,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        **step_cost(point.cell, point.input_size, point.hidden_size).columns(),
        **facts, **env.provenance(),
    }


def _child(
    point: Point, settings: Settings, target: str, conn: multiprocessing.connection.Connection
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    backends.register(point.backend, target)  # backends registered in the parent at run time
    try:
        rows = measure(point, settings)
    except backends.Unsupported as exc:  # found out only while preparing (e.g. sizes too large)
        rows = [failure_row(point, "skipped", "Unsupported", str(exc))]
    except Exception as exc:  # a point's failure is data, not a crash
        detail = traceback.format_exception_only(exc)[-1].strip()
        rows = [failure_row(point, "error", type(exc).__name__, detail)]
    try:
        conn.send(rows)
    except OSError:
        pass  # the parent stopped waiting (timeout or Ctrl-C): nobody to report to
    finally:
        conn.close()


# Set by the sweep's Ctrl-C handler. The handler also raises KeyboardInterrupt, but Python
# swallows an exception raised while a finalizer (__del__) runs, so waits check this too.
STOP = threading.Event()


def _wait_for(receiver: multiprocessing.connection.Connection, timeout: float) -> bool:
    """Like ``receiver.poll(timeout)``, but raises KeyboardInterrupt once a stop was requested."""
    deadline = time.monotonic() + timeout
    while not STOP.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if receiver.poll(min(remaining, 0.2)):
            return True
    raise KeyboardInterrupt


_forkserver: mp.context.BaseContext | None = None
# Allocator settings a parent may pass on that change what a point measures. Dask's nanny
# gives its workers MALLOC_TRIM_THRESHOLD_=65536: freed memory goes back to the OS at
# once and the next allocation faults its pages in again, which made float points with
# B=32 three times slower on a Dask worker. Points run with the C library's defaults.
_MEASUREMENT_ENV_DROPPED = ("MALLOC_TRIM_THRESHOLD_",)


def _mp_context(fork_safe: bool) -> mp.context.BaseContext:
    """A fork server with the libraries preloaded (fast), or a fresh interpreter (spawn).

    Spawn is for backends whose libraries misbehave when forked after import (see
    :attr:`rnnbench.backends.base.Backend.fork_safe`).
    """
    global _forkserver
    for name in _MEASUREMENT_ENV_DROPPED:  # inherited by the fork server and spawned children
        os.environ.pop(name, None)
    if not fork_safe:
        return mp.get_context("spawn")
    if _forkserver is None:
        _forkserver = mp.get_context("forkserver")
        _forkserver.set_forkserver_preload(_PRELOAD)
    return _forkserver


def run_point(point: Point, settings: Settings) -> list[dict[str, Any]]:
    """Measure ``point`` in a fresh child process, killed after ``settings.timeout`` seconds."""
    ctx = _mp_context(backends.get(point.backend).fork_safe)
    receiver, sender = ctx.Pipe(duplex=False)
    target = backends.target(point.backend)
    process = ctx.Process(target=_child, args=(point, settings, target, sender), daemon=True)
    process.start()
    sender.close()
    try:
        if _wait_for(receiver, settings.timeout):
            try:
                rows = receiver.recv()
            except EOFError:
                pass  # the child died before sending; reported below
            else:
                process.join(10)  # let it exit cleanly (releases its semaphores)
                return rows
        else:
            return [failure_row(point, "timeout", "Timeout",
                                f"point did not finish within {settings.timeout:g} s")]
        process.join(5)
        return [failure_row(point, "error", "ChildDied",
                            f"child process died with exit code {process.exitcode}")]
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receiver.close()
