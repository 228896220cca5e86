"""Queries over results rows: what identifies a point, which run of it counts, which rows are samples.

Written once and used by the summary table, ``compare`` and the dashboard, so they
all mean the same thing by "the latest measurement of a point". A point is its
parameters (``point_id``, a hash of :data:`POINT_KEYS`) *on one machine*: the same
point measured on two machines is two measurements that are never pooled or
replaced by one another. On one machine the newest run of a point represents it.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

POINT_KEYS = ["cell", "backend", "backend_params", "seq_len", "hidden_size", "batch_size",
              "input_size", "threads", "seed", "task", "model_activations"]
MACHINE = "machine"  # a derived column: which machine measured the row (see machine_key)
IDENTITY = ["point_id", MACHINE]
# A point is compared with GRU on the same backend, configuration and machine.
PEER_KEYS = [k for k in POINT_KEYS if k != "cell"] + [MACHINE]


def machine_key(rows: pd.DataFrame) -> pd.Series:
    """Which machine measured each row: its machine id, else its host name, else ``"unknown"``.

    Rows of a point whose Dask worker died carry no machine (the client wrote them).
    """
    key = rows["machine_id"].astype("object")
    key = key.where(key.notna(), rows["hostname"].astype("object"))
    return key.where(key.notna(), "unknown").astype(str)


def with_machine(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with the :data:`MACHINE` column (added once; kept if already there)."""
    return rows if MACHINE in rows.columns else rows.assign(**{MACHINE: machine_key(rows)})


def of_kind(rows: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Rows of one kind (``timing``, ``accuracy``, ``train_curve``); rows without a kind are timing."""
    return rows[rows["kind"].fillna("timing") == kind]


def timed_samples(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows that carry statistics: successful timing samples, warm-up excluded."""
    timing = of_kind(rows, "timing")
    # astype(bool): read back from Parquet the column is object dtype, where ~True is -2 (truthy).
    warmup = timing["is_warmup"].fillna(False).astype(bool)
    return timing[(timing["status"] == "ok") & ~warmup]


def latest_runs(rows: pd.DataFrame, kind: str = "timing") -> pd.DataFrame:
    """Every row of ``kind`` from the newest run of each point on each machine.

    A point measured again (a rerun, a merged file) is represented by its newest run
    only, so old and new samples are never pooled; rows without a start time (training
    curves) count as older than any that have one, and file order decides among them.
    """
    selected = with_machine(of_kind(rows, kind))
    newest = (selected.sort_values("started_at", kind="stable", na_position="first")
              .drop_duplicates(IDENTITY, keep="last")[[*IDENTITY, "run_id"]])
    return selected.merge(newest, on=[*IDENTITY, "run_id"])


def latest_points(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(points, samples)``: one row per timing point and machine from its newest run, and its samples."""
    runs = latest_runs(rows, "timing")
    return runs.drop_duplicates(IDENTITY).reset_index(drop=True), timed_samples(runs)


def runs_per_point(rows: pd.DataFrame, kind: str = "timing") -> pd.Series:
    """How many runs measured each point on each machine (indexed by :data:`IDENTITY`)."""
    selected = with_machine(of_kind(rows, kind))
    return selected.groupby(IDENTITY)["run_id"].nunique()


def markdown(table: pd.DataFrame, formats: Mapping[str, str] | None = None) -> str:
    """Any table as Markdown: numbers right-aligned (``formats`` per column, default 4
    significant digits), missing values as –, text on one line with ``|`` escaped."""
    formats = formats or {}
    numeric = [pd.api.types.is_numeric_dtype(table[c]) for c in table.columns]
    lines = ["| " + " | ".join(map(str, table.columns)) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for values in table.itertuples(index=False):
        cells = []
        for column, value, is_number in zip(table.columns, values, numeric, strict=True):
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                cells.append("–")
            elif is_number and isinstance(value, float):
                cells.append(format(value, formats.get(column, ".4g")))
            else:
                cells.append(" ".join(str(value).split()).replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
