"""Executors decide where points run; every executor yields the same rows for the same points."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from rnnbench.grid import Point
from rnnbench.runner import Settings, run_point


class Executor(Protocol):
    def map(
        self, points: Iterable[Point], settings: Settings
    ) -> Iterator[tuple[Point, list[dict[str, Any]]]]:
        """Run every point, yielding ``(point, rows)`` as each finishes (in any order)."""
        ...

    def close(self) -> None: ...


class Sequential:
    """One point at a time on this machine, each in its own child process (the default)."""

    def map(
        self, points: Iterable[Point], settings: Settings
    ) -> Iterator[tuple[Point, list[dict[str, Any]]]]:
        for point in points:
            yield point, run_point(point, settings)

    def close(self) -> None:
        pass
