"""Results rows, built in one place.

A row is a mapping from column name to value. Every row of a point starts from
:func:`point_row` (the point's identity, what kind of row it is, its status and the
provenance of the process that measured it), and every row is checked against the
schema by :func:`validate` in the process that measured it, so a backend that
reports a fact the schema lacks produces an error row, not a crashed sweep.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from rnnbench import env
from rnnbench.cells.costs import step_cost
from rnnbench.grid import Point

Row = dict[str, Any]


class RowError(ValueError):
    """A row that the results schema cannot hold (an unknown column, a value of the wrong type)."""


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def kind_of(point: Point) -> str:
    """Rows of a point with a task score a trained model; the others time a cell."""
    return "accuracy" if point.task else "timing"


def point_row(point: Point, kind: str, status: str = "ok", **columns: Any) -> Row:
    """The columns every row of ``point`` has, plus ``columns``."""
    return {**point.columns(), "kind": kind, "status": status, **env.provenance(), **columns}


def cost_columns(point: Point) -> dict[str, int]:
    """The deterministic cost model of the point's cell (per time step of one sequence)."""
    return step_cost(point.cell, point.input_size, point.hidden_size).columns()


def failure_row(point: Point, status: str, error_type: str, message: str) -> Row:
    """The single row that records a point that did not produce samples."""
    return point_row(point, kind_of(point), status, error_type=error_type, error_message=message,
                     started_at=now(), **cost_columns(point))


def validate(rows: Iterable[Mapping[str, Any]]) -> None:
    """Raise :class:`RowError` (one line) unless the schema can hold every row as it is."""
    import pyarrow as pa

    from rnnbench.results.store import rows_to_table, unknown_columns

    rows = list(rows)
    for row in rows:
        unknown = unknown_columns(row)
        if unknown:
            raise RowError(f"not columns of the results schema: {', '.join(unknown)}")
    try:
        rows_to_table(rows)
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
        raise RowError(f"a value does not fit the results schema: {exc}") from None
