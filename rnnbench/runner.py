"""Process management: run one point in a child process with a hard timeout.

What a child does is :func:`rnnbench.measure.measure_point`; this module decides how
the child starts (forked from a fork server with the libraries preloaded, or a fresh
interpreter for backends that misbehave after a fork), kills it after the timeout,
turns a child that dies into an error row, and stops waiting when the caller's
``stop`` event is set (Ctrl-C, SIGTERM). It knows nothing about the CLI or the store.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from rnnbench import backends
from rnnbench.grid import Point
from rnnbench.measure import Settings, measure_point
from rnnbench.results.rows import Row, failure_row

# Imported by the fork server once, so every point's child starts with them loaded.
_PRELOAD = ["rnnbench.measure", "rnnbench.backends.float32", "rnnbench.backends.pytorch",
            "rnnbench.backends.onnxrt", "rnnbench.backends.integer.backend",
            "rnnbench.backends.ckks", "rnnbench.tasks.evaluate"]


class Stopped(KeyboardInterrupt):
    """The caller's stop event was set while a point was running (the point is abandoned)."""


def _child(point: Point, settings: Settings, target: str,
           conn: multiprocessing.connection.Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    backends.register(point.backend, target)  # backends registered in the parent at run time
    rows = measure_point(point, settings)
    try:
        conn.send(rows)
    except OSError:
        pass  # the parent stopped waiting (timeout or Ctrl-C): nobody to report to
    finally:
        conn.close()


def _wait_for(receiver: multiprocessing.connection.Connection, timeout: float,
              stop: threading.Event | None) -> bool:
    """Like ``receiver.poll(timeout)``, but raises :class:`Stopped` once ``stop`` is set.

    Polled in short slices because a signal handler's exception can be swallowed while a
    finalizer (``__del__``) runs; the event is what reliably says "stop".
    """
    deadline = time.monotonic() + timeout
    while stop is None or not stop.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if receiver.poll(min(remaining, 0.2)):
            return True
    raise Stopped


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
        _start_fork_server()
    return _forkserver


def _start_fork_server() -> None:
    """Start the fork server with Ctrl-C ignored, a setting it inherits.

    A terminal's Ctrl-C goes to the whole process group: while the server imports the
    preloaded libraries (seconds) it would otherwise print a KeyboardInterrupt traceback
    of its own. The sweep's parent handles Ctrl-C; the server only forks children.
    """
    from multiprocessing import forkserver

    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers are the main thread's (a Dask worker): started on first use
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)


def _plain(value: object) -> object:
    """NumPy scalars as Python numbers: rows cross between interpreters with different NumPy."""
    return value.item() if isinstance(value, np.generic) else value


def _run_in_interpreter(point: Point, settings: Settings, interpreter: str,
                        stop: threading.Event | None) -> list[Row]:
    """Measure ``point`` in a child of another interpreter (``python -m rnnbench.runner``).

    For backends whose library needs another environment (:attr:`Backend.interpreter`).
    The point, settings and backend target go in on stdin, the rows come back in a file
    (pickled plain Python values); the child is killed after ``settings.timeout`` seconds.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    environ = {**os.environ, "PYTHONPATH": path}
    for name in _MEASUREMENT_ENV_DROPPED:
        environ.pop(name, None)
    with tempfile.TemporaryDirectory(prefix="rnnbench-point-") as tmp:
        rows_file = os.path.join(tmp, "rows.pickle")
        process = subprocess.Popen([interpreter, "-m", "rnnbench.runner", rows_file], stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environ)
        try:
            process.stdin.write(pickle.dumps((point, settings, backends.target(point.backend))))
            process.stdin.close()
            deadline = time.monotonic() + settings.timeout
            while process.poll() is None:
                if stop is not None and stop.is_set():
                    raise Stopped
                if time.monotonic() > deadline:
                    return [failure_row(point, "timeout", "Timeout",
                                        f"point did not finish within {settings.timeout:g} s")]
                time.sleep(0.2)
            if os.path.exists(rows_file):
                with open(rows_file, "rb") as f:
                    return pickle.load(f)
            tail = process.stderr.read().decode(errors="replace").strip().splitlines()[-1:] or [""]
            return [failure_row(point, "error", "ChildDied",
                                f"child process died with exit code {process.returncode}: {tail[0]}")]
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stderr.close()


class _RowsFile:
    """The other interpreter's end of :func:`_run_in_interpreter`: rows written to a file, atomically."""

    def __init__(self, path: str) -> None:
        self.path = path

    def send(self, rows: list[Row]) -> None:
        with open(self.path + ".tmp", "wb") as f:
            pickle.dump([{k: _plain(v) for k, v in row.items()} for row in rows], f)
        os.replace(self.path + ".tmp", self.path)

    def close(self) -> None:
        pass


def run_point(point: Point, settings: Settings, stop: threading.Event | None = None) -> list[Row]:
    """Measure ``point`` in a fresh child process, killed after ``settings.timeout`` seconds.

    Raises :class:`Stopped` (a ``KeyboardInterrupt``) when ``stop`` is set while waiting.
    """
    backend = backends.get(point.backend)
    if backend.interpreter:
        reason = backend.skip_reason(point.cell, point.backend_params)
        if reason:  # e.g. the other environment is missing
            return [failure_row(point, "skipped", "Unsupported", reason)]
        return _run_in_interpreter(point, settings, backend.interpreter, stop)
    ctx = _mp_context(backend.fork_safe)
    receiver, sender = ctx.Pipe(duplex=False)
    target = backends.target(point.backend)
    process = ctx.Process(target=_child, args=(point, settings, target, sender), daemon=True)
    process.start()
    sender.close()
    try:
        if not _wait_for(receiver, settings.timeout, stop):
            return [failure_row(point, "timeout", "Timeout",
                                f"point did not finish within {settings.timeout:g} s")]
        try:
            rows = receiver.recv()
        except EOFError:
            process.join(5)
            return [failure_row(point, "error", "ChildDied",
                                f"child process died with exit code {process.exitcode}")]
        process.join(10)  # let it exit cleanly (releases its semaphores)
        return rows
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receiver.close()


if __name__ == "__main__":  # a point's child in another interpreter (see _run_in_interpreter)
    _point, _settings, _target = pickle.loads(sys.stdin.buffer.read())
    _child(_point, _settings, _target, _RowsFile(sys.argv[1]))
