"""The results store: one versioned Parquet schema, atomic appends, footer metadata.

One row per timed sample (tidy): a point's non-timing facts (cost model, errors,
counters, accuracy) repeat on each of its rows, so any row can be read alone. A
point that failed, timed out or was skipped is one row with ``status`` and
``error_message``. The file footer holds JSON metadata: the schema version and, for
every run written into the file, its id, CLI arguments and environment record.

Writes go to a temporary file in the same directory and are renamed over the
target, so a crash leaves either the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 1
METADATA_KEY = b"rnnbench"

_I = pa.int64()
_F = pa.float64()
_S = pa.string()
_B = pa.bool_()

COLUMNS: list[tuple[str, pa.DataType]] = [
    # Identity of the point (the resume key is point_id, a hash of these parameters).
    ("schema_version", pa.int32()),
    ("run_id", _S),
    ("point_id", _S),
    ("kind", _S),  # "timing" | "accuracy" | "train_curve"
    ("cell", _S),
    ("backend", _S),
    ("task", _S),
    ("seq_len", _I),
    ("hidden_size", _I),
    ("input_size", _I),
    ("batch_size", _I),
    ("threads", _I),
    ("seed", _I),
    ("backend_params", _S),  # JSON
    # The sample.
    ("repeat_idx", _I),
    ("is_warmup", _B),
    ("loops", _I),
    ("status", _S),  # "ok" | "error" | "timeout" | "skipped"
    ("error_type", _S),
    ("error_message", _S),
    ("wall_time_s", _F),
    ("cpu_time_s", _F),
    ("time_per_step_s", _F),
    ("prepare_time_s", _F),
    ("peak_rss_bytes", _I),
    ("started_at", pa.timestamp("us", tz="UTC")),
    # Deterministic cost model, per time step of one sequence.
    ("ops_weight_mul", _I),
    ("ops_data_mul", _I),
    ("ops_add", _I),
    ("ops_nonlin", _I),
    ("ops_int8", _I),
    ("ops_int16", _I),
    ("ops_int32", _I),
    ("ops_lut", _I),
    # Error against the reference module (outputs; final_* on the final hidden state).
    ("max_abs_err", _F),
    ("mean_abs_err", _F),
    ("rel_l2_err", _F),
    ("final_max_abs_err", _F),
    ("final_mean_abs_err", _F),
    ("final_rel_l2_err", _F),
    ("saturation_rate", _F),
    ("calibration_size", _I),
    # CKKS: phase times per run, depth and counters per step, traffic per run.
    ("ckks_keygen_s", _F),
    ("ckks_encrypt_s", _F),
    ("ckks_eval_s", _F),
    ("ckks_refresh_s", _F),
    ("ckks_decrypt_s", _F),
    ("ckks_depth_per_step", _I),
    ("ckks_refreshes", _I),
    ("ckks_ct_ct_mul", _I),
    ("ckks_ct_pt_mul", _I),
    ("ckks_rotations", _I),
    ("ckks_additions", _I),
    ("ckks_bytes_to_server", _I),
    ("ckks_bytes_to_client", _I),
    ("ckks_context_bytes", _I),
    ("ckks_out_of_range_frac", _F),
    ("ckks_poly_max_abs_err", _F),
    ("ckks_poly_degree", _I),  # the parameters chosen for the point (automatic unless given)
    ("ckks_scale_bits", _I),
    ("ckks_coeff_modulus_bits", _I),
    ("ckks_refresh_every", _I),
    ("ckks_packing", _S),  # batch or vector (what packing=auto resolved to)
    ("ckks_polys", _S),  # JSON: per nonlinearity, degree, interval half-width, max fit error
    # Accuracy on a task, and training curves.
    ("metric", _S),
    ("metric_value", _F),
    ("n_eval", _I),
    ("agreement", _F),
    ("train_step", _I),
    # Provenance: where and with what this row was measured.
    ("rnnbench_version", _S),
    ("git_commit", _S),
    ("git_dirty", _B),
    ("machine_id", _S),
    ("hostname", _S),
    ("cpu_model", _S),
    ("cpu_count", _I),
    ("os", _S),
    ("python_version", _S),
    ("numpy_version", _S),
    ("numba_version", _S),
    ("torch_version", _S),
    ("onnxruntime_version", _S),
    ("tenseal_version", _S),
    ("pyarrow_version", _S),
    ("scipy_version", _S),
]

SCHEMA = pa.schema(COLUMNS)
COLUMN_NAMES = frozenset(SCHEMA.names)
REQUIRED_COLUMNS = ("schema_version", "run_id", "point_id", "cell", "backend", "status")


class ResultsFileError(Exception):
    """A results file that cannot be read as rnnbench results (corrupt, other schema, ...)."""


def rows_to_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Rows (dicts) as a table of :data:`SCHEMA`; missing columns become null."""
    rows = list(rows)
    for row in rows:
        unknown = set(row) - COLUMN_NAMES
        if unknown:
            raise ValueError(f"not columns of the results schema: {sorted(unknown)}")
    columns = {name: [row.get(name) for row in rows] for name in SCHEMA.names}
    columns["schema_version"] = [SCHEMA_VERSION] * len(rows)
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def read_table(path: str | os.PathLike) -> tuple[pa.Table, dict[str, Any]]:
    """Read one results file and its footer metadata; :class:`ResultsFileError` if it is not one."""
    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ResultsFileError(f"{path}: not a readable Parquet file ({exc})") from None
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise ResultsFileError(f"{path}: not an rnnbench results file (no rnnbench footer)")
    try:
        metadata = json.loads(raw)
    except json.JSONDecodeError:
        raise ResultsFileError(f"{path}: corrupt rnnbench footer metadata") from None
    version = metadata.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ResultsFileError(
            f"{path}: schema version {version}, this rnnbench reads version {SCHEMA_VERSION}"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise ResultsFileError(f"{path}: missing columns {missing}")
    return table.cast(SCHEMA) if table.schema.remove_metadata() != SCHEMA else table, metadata


def _write_atomic(path: Path, table: pa.Table, metadata: Mapping[str, Any]) -> None:
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata, default=str)})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide results from other users
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]], run: Mapping[str, Any]) -> None:
    """Append ``rows`` of ``run`` (its ``run_id``, arguments, environment) to ``path`` atomically."""
    path = Path(path)
    new = rows_to_table(rows)
    if path.exists():
        old, metadata = read_table(path)
        table = pa.concat_tables([old, new])
    else:
        table, metadata = new, {"schema_version": SCHEMA_VERSION, "runs": []}
    if all(r.get("run_id") != run["run_id"] for r in metadata["runs"]):
        metadata["runs"].append(dict(run))
    _write_atomic(path, table, metadata)


def write(path: str | os.PathLike, table: pa.Table, metadata: Mapping[str, Any]) -> None:
    """Write a whole results table (e.g. merged runs) atomically."""
    _write_atomic(Path(path), table.cast(SCHEMA), metadata)


def merge(paths: Iterable[str | os.PathLike]) -> tuple[pa.Table, dict[str, Any]]:
    """The rows and run records of several results files, for :func:`write`.

    Each file is checked like any read (schema version included); a run found in two
    files (a copy, or a file merged before) is refused, since its rows would count twice.
    """
    tables, runs, seen = [], [], {}
    for path in paths:
        table, metadata = read_table(path)
        for run in metadata.get("runs", []):
            if run["run_id"] in seen:
                raise ResultsFileError(f"{path}: run {run['run_id']} is also in {seen[run['run_id']]}; "
                                       "merging would count its rows twice")
            seen[run["run_id"]] = path
            runs.append(run)
        tables.append(table)
    if not tables:
        raise ResultsFileError("no results files to merge")
    return pa.concat_tables(tables), {"schema_version": SCHEMA_VERSION, "runs": runs}


def read(path: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One results file as a DataFrame plus its footer metadata."""
    table, metadata = read_table(path)
    return table.to_pandas(), metadata


def completed_point_ids(path: str | os.PathLike) -> set[str]:
    """Points already measured successfully in ``path`` (the ``--resume`` look-up)."""
    table, _ = read_table(path)
    frame = table.select(["point_id", "status"]).to_pandas()
    return set(frame.loc[frame["status"] == "ok", "point_id"])


def results_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files and directories into the Parquet files they hold, sorted."""
    found: list[Path] = []
    for p in map(Path, paths):
        found.extend(sorted(p.glob("*.parquet")) if p.is_dir() else [p])
    return found


def read_many(paths: Iterable[str | os.PathLike]) -> tuple[pd.DataFrame, list[dict], list[str]]:
    """Read many results files into one DataFrame.

    Returns ``(rows, runs, problems)``: the concatenated rows (with a ``source_file``
    column), the run records of every footer, and one message per file that could not
    be read, so one bad file never hides the others.
    """
    frames, runs, problems = [], [], []
    for path in results_files(paths):
        try:
            frame, metadata = read(path)
        except ResultsFileError as exc:
            problems.append(str(exc))
            continue
        frame["source_file"] = str(path)
        frames.append(frame)
        runs.extend({**r, "source_file": str(path)} for r in metadata.get("runs", []))
    if not frames:
        empty = SCHEMA.empty_table().to_pandas()
        empty["source_file"] = pd.Series(dtype="string")
        return empty, runs, problems
    return pd.concat(frames, ignore_index=True), runs, problems
