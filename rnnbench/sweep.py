"""A sweep: run points through an executor and append each point's rows to the results file."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rnnbench import env
from rnnbench.executors import Executor, Sequential
from rnnbench.grid import Point
from rnnbench.results import store
from rnnbench.runner import STOP, Settings

FILE_PREFIX = "rnnbench-"


def new_run(args: Mapping[str, Any], settings: Settings | Mapping[str, Any]) -> dict[str, Any]:
    """The record of one sweep (or training) invocation, stored in the results file's footer."""
    return {
        "run_id": uuid.uuid4().hex[:12],
        "started_at": dt.datetime.now(dt.UTC).isoformat(),
        "args": dict(args),
        "settings": asdict(settings) if isinstance(settings, Settings) else dict(settings),
        "env": env.collect(),
    }


def resolve_output(out: Path, resume: bool) -> Path:
    """The results file for ``--out``: a ``.parquet`` path as given, or a file in a directory.

    In a directory, a new sweep gets a new time-stamped file; ``--resume`` continues the
    newest one there.
    """
    if out.suffix == ".parquet":
        return out
    if resume:
        existing = sorted(out.glob(f"{FILE_PREFIX}*.parquet"), key=lambda p: p.stat().st_mtime)
        if existing:
            return existing[-1]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return out / f"{FILE_PREFIX}{stamp}.parquet"


def check_writable(path: Path) -> None:
    """Raise ``OSError`` unless a file can be created next to ``path`` (checked before any work)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(prefix=".rnnbench-probe-", dir=path.parent)
    os.close(fd)
    os.unlink(probe)


@dataclass
class Outcome:
    path: Path
    measured: int
    skipped_done: int
    statuses: dict[str, int]


def run_sweep(
    points: Sequence[Point],
    settings: Settings,
    path: Path,
    run: Mapping[str, Any],
    resume: bool = False,
    executor: Executor | None = None,
    on_start: Callable[[int], None] | None = None,
    on_point: Callable[[Point, list[dict[str, Any]]], None] | None = None,
) -> Outcome:
    """Measure ``points`` and append their rows to ``path`` point by point.

    Each finished point is written before the next is awaited, so an interruption
    (Ctrl-C, a crash) loses at most the points in flight, and ``resume`` skips the
    points already ``ok`` in ``path``.
    """
    done = store.completed_point_ids(path) if resume and path.exists() else set()
    todo = [p for p in points if p.point_id not in done]
    if on_start:
        on_start(len(todo))
    executor = executor or Sequential()
    statuses: dict[str, int] = {}
    try:
        for point, rows in executor.map(todo, settings):
            rows = [{**row, "run_id": run["run_id"]} for row in rows]
            store.append(path, rows, run)
            status = rows[0]["status"]
            statuses[status] = statuses.get(status, 0) + 1
            if on_point:
                on_point(point, rows)
            if STOP.is_set():
                raise KeyboardInterrupt
    finally:
        executor.close()
    return Outcome(path, sum(statuses.values()), len(points) - len(todo), statuses)
