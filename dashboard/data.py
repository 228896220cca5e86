"""Loading, describing, filtering and exporting results rows: the page's logic without Streamlit."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from rnnbench.results import store

DEFAULT_RESULTS = "results"
RESULTS_ENV = "RNNBENCH_RESULTS"  # os.pathsep-separated paths, set by `rnnbench dashboard`

Loaded = tuple[pd.DataFrame, list[dict], list[str]]  # rows, runs, problems (as store.read_many)
Signature = tuple[tuple[str, float, int], ...]  # (path, mtime, size) per results file


@dataclass(frozen=True)
class Filter:
    column: str
    param: str  # the URL query parameter
    label: str


# Rows without a value in a filter's column (e.g. timing rows have no task) are never filtered out by it.
FILTERS = [
    Filter("cell", "cell", "Cell"),
    Filter("backend", "backend", "Backend"),
    Filter("hidden_size", "hidden", "Hidden size"),
    Filter("batch_size", "batch", "Batch size"),
    Filter("task", "task", "Task (accuracy rows)"),
    Filter("run_id", "run", "Run"),
]


def paths_from_env(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The results paths the dashboard was started with (default: the results directory)."""
    value = environ.get(RESULTS_ENV, "")
    return [p for p in value.split(os.pathsep) if p] or [DEFAULT_RESULTS]


def file_signature(paths: Iterable[str | os.PathLike]) -> tuple[Signature, list[str]]:
    """``(files, problems)``: each results file with its modification time and size (a cache key
    that changes with the files), and one message per path that holds no results file."""
    signature, problems = [], []
    for given in map(Path, paths):
        if not given.exists():
            problems.append(f"{given}: no such file or directory")
            continue
        files = store.results_files([given])
        if not files:
            problems.append(f"{given}: no results files (*.parquet) in this directory")
        for path in files:
            stat = path.stat()
            signature.append((str(path), stat.st_mtime, stat.st_size))
    return tuple(signature), problems


def read_uploads(files: Sequence[tuple[str, bytes]]) -> Loaded:
    """Uploaded files (name, content) read like files on disk; problems name the upload."""
    with tempfile.TemporaryDirectory(prefix="rnnbench-upload-") as tmp:
        paths = []
        for i, (name, content) in enumerate(files):
            path = Path(tmp) / f"{i:03d}-{Path(name).name}"
            path.write_bytes(content)
            paths.append(path)
        rows, runs, problems = store.read_many(paths)
    renames = {str(p): f"upload {name}" for p, (name, _) in zip(paths, files, strict=True)}
    for old, new in renames.items():
        problems = [m.replace(old, new) for m in problems]
    rows["source_file"] = rows["source_file"].map(lambda p: renames.get(p, p))
    runs = [{**r, "source_file": renames.get(r["source_file"], r["source_file"])} for r in runs]
    return rows, runs, problems


def combine(*loaded: Loaded) -> Loaded:
    """Several ``(rows, runs, problems)`` as one."""
    frames = [rows for rows, _, _ in loaded if not rows.empty]
    rows = pd.concat(frames, ignore_index=True) if frames else loaded[0][0]
    return rows, [r for _, runs, _ in loaded for r in runs], [p for _, _, ps in loaded for p in ps]


def runs_table(rows: pd.DataFrame, runs: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One line per loaded run: when, on which machine, from which commit, how many points."""
    counts = rows.groupby("run_id").agg(points=("point_id", "nunique"), rows=("point_id", "size"))
    lines = []
    for run in runs:
        env = run.get("env") or {}
        commit = (env.get("git_commit") or "")[:10] + ("+dirty" if env.get("git_dirty") else "")
        machine = " @ ".join(v for v in (env.get("cpu_model"), env.get("hostname")) if v)
        started = pd.to_datetime(run.get("started_at"), utc=True, errors="coerce")
        lines.append({
            "run": run.get("run_id"),
            "date": started.strftime("%Y-%m-%d %H:%M UTC") if pd.notna(started) else "",
            "machine": machine, "commit": commit or "unknown",
            "points": int(counts["points"].get(run.get("run_id"), 0)),
            "rows": int(counts["rows"].get(run.get("run_id"), 0)),
            "file": run.get("source_file", ""),
        })
    columns = ["run", "date", "machine", "commit", "points", "rows", "file"]
    return pd.DataFrame(lines, columns=columns).drop_duplicates(["run", "file"])


def filter_options(rows: pd.DataFrame, column: str) -> list:
    """The values a filter offers: those present in the rows, sorted."""
    values = rows[column].dropna().unique().tolist()
    return sorted(values, key=lambda v: (isinstance(v, str), v))


def apply_filters(rows: pd.DataFrame, selection: Mapping[str, Sequence]) -> pd.DataFrame:
    """Rows whose value is selected in every filter with a selection; an empty filter keeps all."""
    keep = pd.Series(True, index=rows.index)
    for column, chosen in selection.items():
        if chosen:
            keep &= rows[column].isna() | rows[column].isin(list(chosen))
    return rows[keep]


def parse_selection(params: Mapping[str, Sequence[str]], rows: pd.DataFrame) -> dict[str, list]:
    """URL query values (strings) -> each filter's selected values of the right type.

    Values not present in the loaded rows are dropped, so an old link never errs.
    """
    selection = {}
    for f in FILTERS:
        wanted = set(params.get(f.param, []))
        selection[f.column] = [v for v in filter_options(rows, f.column) if str(v) in wanted]
    return selection


def to_query(selection: Mapping[str, Sequence]) -> dict[str, list[str]]:
    """A selection as URL query parameters (empty filters left out, so links stay short)."""
    by_column = {f.column: f.param for f in FILTERS}
    return {by_column[c]: [str(v) for v in values] for c, values in selection.items() if values}


def results_file_bytes(rows: pd.DataFrame, runs: Sequence[Mapping[str, Any]]) -> bytes:
    """The rows as an rnnbench results file (schema and footer), loadable by the dashboard again."""
    table = pa.Table.from_pandas(rows[list(store.SCHEMA.names)], schema=store.SCHEMA, preserve_index=False)
    selected = set(rows["run_id"])
    metadata = {"schema_version": store.SCHEMA_VERSION,
                "runs": [{k: v for k, v in r.items() if k != "source_file"}
                         for r in runs if r.get("run_id") in selected]}
    with tempfile.TemporaryDirectory(prefix="rnnbench-export-") as tmp:
        path = Path(tmp) / "results.parquet"
        store.write(path, table, metadata)
        return path.read_bytes()
