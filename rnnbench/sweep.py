"""A sweep: run points through an executor and write each point's rows as it finishes."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rnnbench import env
from rnnbench.executors import Executor, Sequential
from rnnbench.grid import Point
from rnnbench.measure import Settings
from rnnbench.results import store
from rnnbench.results.rows import Row


def new_run_id() -> str:
    """A run's unique id: it names the run's results file and tags every row it writes."""
    return uuid.uuid4().hex[:12]


def new_run(run_id: str, args: Mapping[str, Any], settings: Settings | Mapping[str, Any]) -> dict[str, Any]:
    """The record of one sweep (or training) invocation, stored in the results file's footer."""
    return {
        "run_id": run_id,
        "started_at": dt.datetime.now(dt.UTC).isoformat(),
        "args": dict(args),
        "settings": asdict(settings) if isinstance(settings, Settings) else dict(settings),
        "env": env.collect(),
    }


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
    stop: threading.Event | None = None,
    on_start: Callable[[int], None] | None = None,
    on_point: Callable[[Point, list[Row]], None] | None = None,
) -> Outcome:
    """Measure ``points`` and write their rows to results file ``path`` point by point.

    Each finished point is written (as a fragment of the run, see :class:`store.RunWriter`)
    before the next is awaited, so an interruption (Ctrl-C, SIGTERM, a crash) loses at
    most the points in flight, and ``resume`` skips the points already ``ok`` in ``path``.
    Setting ``stop`` ends the sweep after the point in flight is abandoned.
    """
    done = store.completed_point_ids(path) if resume and store.exists(path) else set()
    todo = [p for p in points if p.point_id not in done]
    if on_start:
        on_start(len(todo))
    executor = executor or Sequential()
    statuses: dict[str, int] = {}
    with store.RunWriter(path, run) as writer:
        try:
            for point, rows in executor.map(todo, settings, stop):
                writer.append(rows)
                status = rows[0]["status"]
                statuses[status] = statuses.get(status, 0) + 1
                if on_point:
                    on_point(point, rows)
        finally:
            executor.close()
    return Outcome(path, sum(statuses.values()), len(points) - len(todo), statuses)
