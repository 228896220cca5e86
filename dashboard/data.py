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

from dashboard.charts.common import machine_names, model_name, varying_params
from rnnbench.results import compare as comparison
from rnnbench.results import queries, store, summary
from rnnbench.results.queries import with_machine

DEFAULT_RESULTS = "results"
# The results shipped with rnnbench, kept apart from a user's own sweeps (which go to results/).
REFERENCE_RESULTS = Path(__file__).resolve().parent.parent / "results" / "reference"
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
    Filter("machine", "machine", "Machine"),
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
        for path in files:  # a sweep still running adds fragments beside its file: they count too
            stats = [p.stat() for p in [path, *store.parts_dir(path).rglob("*")] if p.exists()]
            signature.append((str(path), max(s.st_mtime for s in stats), sum(s.st_size for s in stats)))
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
    """One line per loaded run: its label, when, on which machine, from which commit, how many points."""
    counts = rows.groupby("run_id").agg(points=("point_id", "nunique"), rows=("point_id", "size"))
    first = with_machine(rows).drop_duplicates("run_id")
    machines = dict(zip(first["run_id"], machine_names(first), strict=True))
    lines = []
    for run in runs:
        env = run.get("env") or {}
        commit = (env.get("git_commit") or "")[:10] + ("+dirty" if env.get("git_dirty") else "")
        machine = machines.get(run.get("run_id")) or env.get("cpu_model") or "unknown machine"
        started = pd.to_datetime(run.get("started_at"), utc=True, errors="coerce")
        date = started.strftime("%Y-%m-%d %H:%M UTC") if pd.notna(started) else "undated"
        file = Path(run.get("source_file", "")).name
        lines.append({
            "label": f"{date} · {machine} · {file}", "run": run.get("run_id"), "date": date,
            "machine": machine, "commit": commit or "unknown",
            "points": int(counts["points"].get(run.get("run_id"), 0)),
            "rows": int(counts["rows"].get(run.get("run_id"), 0)),
            "file": run.get("source_file", ""),
        })
    columns = ["label", "run", "date", "machine", "commit", "points", "rows", "file"]
    table = pd.DataFrame(lines, columns=columns).drop_duplicates(["run", "file"])
    return table.sort_values("date", ascending=False, kind="stable").reset_index(drop=True)


def run_labels(rows: pd.DataFrame, runs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Run id -> "date · machine · file", how the page names a run."""
    table = runs_table(rows, runs)
    return dict(zip(table["run"], table["label"], strict=True))


def filter_names(rows: pd.DataFrame, runs: Sequence[Mapping[str, Any]]) -> dict[str, dict]:
    """How a filter shows its values where the stored value is a key: machines and runs by name."""
    rows = with_machine(rows)
    return {"machine": dict(zip(rows[queries.MACHINE], machine_names(rows), strict=True)),
            "run_id": run_labels(rows, runs)}


def newest_machine(rows: pd.DataFrame) -> str | None:
    """The machine (key) of the newest run: the dashboard's default view."""
    dated = with_machine(rows).dropna(subset=["started_at"])
    if dated.empty:
        return None
    return str(dated.loc[dated["started_at"].idxmax(), "machine"])


def filter_options(rows: pd.DataFrame, column: str) -> list:
    """The values a filter offers: those present in the rows, sorted."""
    values = with_machine(rows)[column].dropna().unique().tolist()
    return sorted(values, key=lambda v: (isinstance(v, str), v))


def apply_filters(rows: pd.DataFrame, selection: Mapping[str, Sequence]) -> pd.DataFrame:
    """Rows whose value is selected in every filter with a selection; an empty filter keeps all."""
    rows = with_machine(rows)
    keep = pd.Series(True, index=rows.index)
    for column, chosen in selection.items():
        if chosen:
            keep &= rows[column].isna() | rows[column].isin(list(chosen))
    return rows[keep]


def parse_selection(params: Mapping[str, Sequence[str]], rows: pd.DataFrame) -> dict[str, list]:
    """URL query values (strings) -> each filter's selected values of the right type.

    Values not present in the loaded rows are dropped, so an old link never errs
    (:func:`unmatched` names them, for a notice).
    """
    selection = {}
    for f in FILTERS:
        wanted = set(params.get(f.param, []))
        selection[f.column] = [v for v in filter_options(rows, f.column) if str(v) in wanted]
    return selection


def unmatched(params: Mapping[str, Sequence[str]], rows: pd.DataFrame) -> dict[str, list[str]]:
    """Per filter label, the URL values that match nothing loaded (a stale or mistyped link)."""
    missing = {}
    for f in FILTERS:
        known = {str(v) for v in filter_options(rows, f.column)}
        values = [v for v in params.get(f.param, []) if v not in known]
        if values:
            missing[f.label] = values
    return missing


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


# Summary tables: the same functions as `rnnbench sweep`'s summary, applied per machine -----------

def summary_table(rows: pd.DataFrame) -> pd.DataFrame:
    """:func:`rnnbench.results.summary.summarize` with each machine's name: one line per point and
    machine, median µs/step, IQR and the ratio to GRU on the same backend, configuration and machine."""
    table = summary.summarize(with_machine(rows))
    return table.assign(machine_name=table[queries.MACHINE].map(filter_names(rows, [])["machine"]))


# The page's column order: what a reader scans for first, long parameters last.
SUMMARY_VIEW = {"cell": "cell", "backend": "backend", "seq_len": "T", "hidden_size": "H", "batch_size": "B",
                "median_us": "median µs/step", "vs_gru": "vs GRU", "iqr_us": "IQR µs", "samples": "n",
                "status": "status", "backend_params": "params", "machine_name": "machine"}


def summary_view(table: pd.DataFrame) -> pd.DataFrame:
    """The summary table as the page shows it: short column names, the parameters that vary
    within a backend as ``k=v``, and a machine column only when there are several machines."""
    view = table[list(SUMMARY_VIEW)].rename(columns=SUMMARY_VIEW)
    view["params"] = varying_params(table) if len(table) else []
    view["status"] = [s if s == "ok" else f"{s}: {m}" for s, m in
                      zip(table["status"], table["error_message"].fillna(""), strict=True)]
    return view if table[queries.MACHINE].nunique() > 1 else view.drop(columns="machine")


def accuracy_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """:func:`rnnbench.results.summary.accuracy_table` with ``vs_float``, the difference from float
    on the same task, cell, model, evaluation set and machine, and the machine's name."""
    table = summary.accuracy_table(with_machine(rows))
    keys = ["task", "metric", "cell", "hidden_size", "seq_len", "seed", "n_eval", queries.MACHINE]
    floats = table[(table["backend"] == "float") & (table["status"] == "ok")]
    reference = floats.drop_duplicates(keys, keep="last").set_index(keys)["metric_value"]
    matched = reference.reindex(pd.MultiIndex.from_frame(table[keys])).to_numpy() if len(table) else []
    table["vs_float"] = table["metric_value"] - matched
    table["machine_name"] = table[queries.MACHINE].map(filter_names(rows, [])["machine"])
    return table


ACCURACY_VIEW = {"task": "task", "model_activations": "model", "cell": "cell", "backend": "backend",
                 "hidden_size": "H", "n_eval": "n",
                 "metric_value": "value", "vs_float": "vs float", "backend_params": "params",
                 "metric": "metric", "status": "status", "machine_name": "machine"}


def accuracy_view(table: pd.DataFrame) -> pd.DataFrame:
    """The accuracy table as the page shows it: short names, only parameters that vary."""
    view = table.reindex(columns=list(ACCURACY_VIEW)).rename(columns=ACCURACY_VIEW)
    view["params"] = varying_params(table) if len(table) else []
    view["model"] = view["model"].map(lambda a: model_name(a) or "as trained")
    unvaried = [c for c, present in (("machine", table[queries.MACHINE].nunique() > 1),
                                     ("model", view["model"].ne("as trained").any())) if not present]
    return view.drop(columns=unvaried)


def summary_downloads(table: pd.DataFrame, accuracy: pd.DataFrame) -> tuple[bytes, bytes]:
    """The summary tables as CSV and as Markdown (the sweep's own Markdown writers)."""
    csv = table.to_csv(index=False)
    markdown = summary.format_markdown(table)
    if not accuracy.empty:
        csv += "\n" + accuracy.to_csv(index=False)
        markdown += "\n\n" + queries.markdown(accuracy)
    return csv.encode(), (markdown + "\n").encode()


# Compare, as `rnnbench compare` -----------------------------------------------------------------

def compare_choices(rows: pd.DataFrame, runs: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    """What a comparison can take as baseline or candidate: label -> ("machine"|"run", value),
    runs newest first, then machines."""
    table = runs_table(rows, runs)
    choices = {f"run: {r.label}": ("run", r.run) for r in table.itertuples()}
    for machine, name in filter_names(rows, runs)["machine"].items():
        choices[f"machine: {name} (newest run of each point)"] = ("machine", machine)
    return choices


def rows_of(rows: pd.DataFrame, choice: tuple[str, str]) -> pd.DataFrame:
    kind, value = choice
    column = "run_id" if kind == "run" else "machine"
    return with_machine(rows).pipe(lambda r: r[r[column] == value])


def compare_rows(baseline: pd.DataFrame, candidate: pd.DataFrame, alpha: float = 0.01,
                 min_effect: float = 0.05) -> tuple[pd.DataFrame, dict[str, Any], str | None]:
    """``rnnbench compare``'s table, summary and environment note, from the same functions."""
    table = comparison.compare(baseline, candidate, alpha=alpha, min_effect=min_effect)
    return table, comparison.summarize(table, alpha), comparison.environment_note(baseline, candidate)
