"""The results store: one versioned Parquet schema, safe appends, footer metadata.

One row per timed sample (tidy): a point's non-timing facts (cost model, errors,
counters, accuracy) repeat on each of its rows, so any row can be read alone. A
point that failed, timed out or was skipped is one row with ``status`` and
``error_message``. The file footer holds JSON metadata: the schema version and, for
every run written into the file, its id, CLI arguments and environment record.

How a run writes (:class:`RunWriter`). Rewriting a Parquet file to add a point costs
time in proportion to the file, and two processes rewriting one file lose each
other's rows. So each point of a run goes into a small file of its own, a *fragment*,
in ``NAME.parquet.parts/RUN_ID/`` beside the results file: constant cost per point,
and no two writers share a file. When the run ends, its fragments are *folded* into
``NAME.parquet`` once, under an exclusive lock (:func:`rnnbench.files.locked`), so any
number of sweeps may write to one results file at once. Readers see the file and the
fragments not yet folded as one table; a run killed before folding loses nothing (the
next writer to the file, or ``rnnbench compact``, folds it). The footer records how
far each run has been folded, so a fold interrupted between writing the file and
removing the fragments never counts rows twice. Plain tools see the same rows:
``pandas.read_parquet`` of a results directory reads the fragment folders too.

Schema evolution: :data:`SCHEMA_VERSION` goes up whenever the columns change. Files
of older versions are read with the columns they lack as null; a file from a newer
rnnbench, or with a column of a type that cannot be converted, is a
:class:`ResultsFileError` (one line, never a traceback).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rnnbench import files

# 2: fragments and folding (footer ``folded_through``); the columns of every backend added since 1.
# 3: ``model_activations`` (a fine-tuned model is its own point).
SCHEMA_VERSION = 3
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
    ("model_activations", _S),  # with a task: "ckks" for a polynomial-aware fine-tuned model
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
    # TFHE (Concrete): per point; *_s per time step except compile and keygen (once per circuit).
    ("tfhe_form", _S),  # literal or packed
    ("tfhe_mode", _S),  # composed (one step circuit applied T times) or unrolled
    ("tfhe_simulated", _B),  # Concrete's simulation (no encryption): true for accuracy-only rows
    ("tfhe_weight_bits", _I),
    ("tfhe_act_bits", _I),
    ("tfhe_compile_s", _F),
    ("tfhe_keygen_s", _F),
    ("tfhe_bootstrap_key_bytes", _I),
    ("tfhe_keyswitch_key_bytes", _I),
    ("tfhe_encrypt_s", _F),
    ("tfhe_eval_s", _F),
    ("tfhe_decrypt_s", _F),
    ("tfhe_pbs_per_step", _F),  # Concrete's statistics of the compiled circuit, per step
    ("tfhe_pbs_model", _I),  # lookups + 2 x encrypted products counted while tracing (no rounding PBS)
    ("tfhe_lut_bits_hist", _S),  # JSON: lookup input bit width -> PBS per step
    ("tfhe_max_lut_bits", _I),
    ("tfhe_max_value_bits", _I),  # widest encrypted value (accumulators)
    ("tfhe_lwe_dimension", _I),  # parameters of the main bootstrap key
    ("tfhe_glwe_dimension", _I),
    ("tfhe_polynomial_size", _I),
    ("tfhe_pbs_levels", _I),
    ("tfhe_ks_levels", _I),
    ("tfhe_crypto_params", _S),  # JSON: every bootstrap key's parameters and PBS count
    ("tfhe_p_error", _F),
    ("tfhe_global_p_error", _F),
    ("tfhe_security_bits", _I),
    ("tfhe_mismatches", _I),  # decrypted integers differing from the cleartext reference (0 expected)
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
REQUIRED_COLUMNS = ("run_id", "point_id", "cell", "backend", "status")
SUFFIX = ".parquet"
PARTS_SUFFIX = ".parts"  # NAME.parquet.parts/RUN_ID/SEQUENCE.parquet: a run's fragments
FILE_PREFIX = "rnnbench-"


class ResultsFileError(Exception):
    """A results file that cannot be read as rnnbench results (missing, corrupt, newer schema, ...)."""


def is_results_name(path: Path) -> bool:
    """Whether ``path`` names a results file (``.parquet``, in any letter case)."""
    return path.suffix.lower() == SUFFIX


def unknown_columns(row: Mapping[str, Any]) -> list[str]:
    """Keys of ``row`` that are not columns of the schema (sorted)."""
    return sorted(set(row) - COLUMN_NAMES)


def rows_to_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Rows (dicts) as a table of :data:`SCHEMA`; missing columns become null."""
    rows = list(rows)
    for row in rows:
        unknown = unknown_columns(row)
        if unknown:
            raise ValueError(f"not columns of the results schema: {unknown}")
    columns = {name: [row.get(name) for row in rows] for name in SCHEMA.names}
    columns["schema_version"] = [SCHEMA_VERSION] * len(rows)
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def _migrate(path: Path, table: pa.Table, version: int) -> pa.Table:
    """``table`` (written by schema ``version``) in today's schema: absent columns null."""
    extra = sorted(set(table.column_names) - COLUMN_NAMES)
    if extra and version == SCHEMA_VERSION:
        raise ResultsFileError(f"{path}: columns {extra} are not in schema version {version}")
    columns = []
    for field in SCHEMA:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        try:
            columns.append(column.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise ResultsFileError(f"{path}: column {field.name!r} holds {column.type}, "
                                   f"schema version {SCHEMA_VERSION} needs {field.type}") from None
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def read_table(path: str | os.PathLike) -> tuple[pa.Table, dict[str, Any]]:
    """One Parquet file of results (a results file or one fragment) and its footer metadata.

    Older schema versions are migrated (:func:`_migrate`); anything else that is not a
    readable rnnbench file of this or an older version raises :class:`ResultsFileError`.
    """
    path = Path(path)
    if not path.exists():
        raise ResultsFileError(f"{path}: no such file")
    if path.is_dir():
        raise ResultsFileError(f"{path}: is a directory, not a results file")
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
    version = metadata.get("schema_version") if isinstance(metadata, dict) else None
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise ResultsFileError(f"{path}: schema version {version}, this rnnbench reads versions "
                               f"1 to {SCHEMA_VERSION} (written by a newer rnnbench?)")
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise ResultsFileError(f"{path}: missing columns {missing}")
    runs = metadata.get("runs")
    metadata["runs"] = runs if isinstance(runs, list) else []
    metadata["schema_version"] = SCHEMA_VERSION
    return _migrate(path, table.replace_schema_metadata(None), version), metadata


def _write(path: Path, table: pa.Table, metadata: Mapping[str, Any], clean: bool = True) -> None:
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata, default=str)})
    files.write_atomic(path, lambda temporary: pq.write_table(table, temporary, compression="zstd"),
                       clean=clean)


def write(path: str | os.PathLike, table: pa.Table, metadata: Mapping[str, Any]) -> None:
    """Write a whole results table (e.g. merged runs) atomically."""
    _write(Path(path), table.cast(SCHEMA), {**metadata, "schema_version": SCHEMA_VERSION})


# --- fragments ------------------------------------------------------------------------------

def parts_dir(path: Path) -> Path:
    """Where the fragments of runs writing to results file ``path`` wait to be folded."""
    return path.with_name(path.name + PARTS_SUFFIX)


def _owner_is_gone(run_dir: Path) -> bool:
    """Whether the process that writes the fragments in ``run_dir`` has ended (this host only)."""
    try:
        owner = json.loads((run_dir / "owner.json").read_text())
    except (OSError, json.JSONDecodeError):
        return True  # a run directory without its owner note was never in use
    if owner.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, KeyError, TypeError, ValueError):
        return False
    return False


def _fragments(run_dir: Path, after: int) -> list[tuple[int, Path]]:
    """The fragments of one run with a sequence number above ``after``, in order."""
    found = []
    for fragment in run_dir.glob("*" + SUFFIX):
        if fragment.stem.isdigit() and int(fragment.stem) > after:
            found.append((int(fragment.stem), fragment))
    return sorted(found)


def _read_fragments(fragments: list[Path]) -> tuple[pa.Table, dict[str, Any] | None]:
    """The rows of one run's fragments (read as one dataset: fast) and the run's record.

    Fragments are written by this schema version only; one that does not read as such is
    read alone so the error names it.
    """
    if not fragments:
        return SCHEMA.empty_table(), None
    try:
        table = pq.ParquetDataset(fragments, schema=SCHEMA).read().replace_schema_metadata(None)
        raw = (pq.read_schema(fragments[0]).metadata or {}).get(METADATA_KEY)
        runs = json.loads(raw).get("runs") if raw else None
    except (OSError, pa.ArrowException, json.JSONDecodeError, AttributeError):
        tables = [read_table(fragment)[0] for fragment in fragments]  # raises, naming the bad one
        return pa.concat_tables(tables), None
    return table.cast(SCHEMA), runs[0] if runs else None


def _folded_through(metadata: Mapping[str, Any]) -> dict[str, int]:
    """Per run, the sequence number of its last fragment already in the file."""
    return {run["run_id"]: run.get("folded_through", 0)
            for run in metadata.get("runs") or [] if "run_id" in run}


def _pending(path: Path, metadata: Mapping[str, Any]) -> list[tuple[Path, list[tuple[int, Path]]]]:
    """Each run directory beside ``path`` and its fragments not yet folded into ``path``."""
    parts = parts_dir(path)
    if not parts.is_dir():
        return []
    folded = _folded_through(metadata)
    return [(run_dir, _fragments(run_dir, folded.get(run_dir.name, 0)))
            for run_dir in sorted(parts.iterdir()) if run_dir.is_dir()]


def _read_file_or_empty(path: Path) -> tuple[pa.Table, dict[str, Any]]:
    if path.exists():
        return read_table(path)
    return SCHEMA.empty_table(), {"schema_version": SCHEMA_VERSION, "runs": []}


def exists(path: str | os.PathLike) -> bool:
    """Whether anything was written to results file ``path`` (the file, or fragments not yet folded)."""
    path = Path(path)
    return path.exists() or parts_dir(path).is_dir()


def read_results(path: str | os.PathLike) -> tuple[pa.Table, dict[str, Any]]:
    """A results file with the fragments not yet folded into it: every row written to ``path``."""
    path = Path(path)
    if not exists(path):
        raise ResultsFileError(f"{path}: no such file")
    if not parts_dir(path).is_dir():
        return read_table(path)
    with files.locked(path, shared=True):  # not while a writer folds fragments into the file
        table, metadata = _read_file_or_empty(path)
        tables, runs = [table], {run["run_id"]: run for run in metadata["runs"] if "run_id" in run}
        for _, fragments in _pending(path, metadata):
            fragment_table, run = _read_fragments([f for _, f in fragments])
            tables.append(fragment_table)
            if run:
                runs.setdefault(run["run_id"], run)
    return pa.concat_tables(tables), {**metadata, "runs": list(runs.values())}


def read(path: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every row written to results file ``path`` as a DataFrame, plus its footer metadata."""
    table, metadata = read_results(path)
    return table.to_pandas(), metadata


def fold(path: str | os.PathLike, runs: Iterable[str] = ()) -> int:
    """Fold fragments into results file ``path``: those of ``runs``, and of runs whose writer died.

    Under the file's lock: reads the file, adds the fragments, writes it atomically
    with each run's ``folded_through`` in the footer, then removes the folded fragments.
    Returns the number of rows added.
    """
    path = Path(path)
    wanted = set(runs)
    with files.locked(path):
        table, metadata = _read_file_or_empty(path)
        records = {run["run_id"]: dict(run) for run in metadata["runs"] if "run_id" in run}
        added, folded_dirs = [], []
        for run_dir, fragments in _pending(path, metadata):
            if run_dir.name not in wanted and not _owner_is_gone(run_dir):
                continue  # a live writer's run: it folds its own fragments when it ends
            folded_dirs.append(run_dir)
            if not fragments:
                continue
            fragment_table, run = _read_fragments([f for _, f in fragments])
            added.append(fragment_table)
            records.setdefault(run_dir.name, {**(run or {}), "run_id": run_dir.name})
            records[run_dir.name]["folded_through"] = fragments[-1][0]
        rows = sum(t.num_rows for t in added)
        if added or not path.exists():
            _write(path, pa.concat_tables([table, *added]),
                   {**metadata, "schema_version": SCHEMA_VERSION, "runs": list(records.values())})
        for run_dir in folded_dirs:
            shutil.rmtree(run_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            parts_dir(path).rmdir()  # only when empty: other runs may still be writing
    return rows


class RunWriter:
    """Writes one run's rows into results file ``path``: a fragment per call, folded at the end.

    ``append`` costs the same for the 10,000th point as for the 10th, and never touches
    a file another writer uses; ``close`` folds the run into ``path`` (also on error or
    Ctrl-C, when used as a context manager).
    """

    def __init__(self, path: str | os.PathLike, run: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.run = dict(run)
        self._run_dir = parts_dir(self.path) / self.run["run_id"]
        self._sequence = self._folded_already()
        self._wrote = False

    def _folded_already(self) -> int:
        """How far this run was folded into the file before (a run may write in several goes)."""
        try:
            raw = (pq.read_schema(self.path).metadata or {}).get(METADATA_KEY)
            return _folded_through(json.loads(raw)).get(self.run["run_id"], 0) if raw else 0
        except (OSError, pa.ArrowException, json.JSONDecodeError, AttributeError, TypeError):
            return 0  # no file yet, or one that fold() will refuse with a clear message

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Write ``rows`` as the run's next fragment (each row gets the run's ``run_id``)."""
        table = rows_to_table({**row, "run_id": self.run["run_id"]} for row in rows)
        if not self._wrote:
            self._run_dir.mkdir(parents=True, exist_ok=True)
            owner = {"host": socket.gethostname(), "pid": os.getpid(),
                     "started_at": dt.datetime.now(dt.UTC).isoformat()}
            files.write_atomic(self._run_dir / "owner.json",
                               lambda temporary: temporary.write_text(json.dumps(owner)))
        self._wrote = True
        self._sequence += 1
        _write(self._run_dir / f"{self._sequence:08d}{SUFFIX}", table,
               {"schema_version": SCHEMA_VERSION, "runs": [self.run]}, clean=False)

    def fold(self) -> None:
        """Fold what this run wrote so far into the results file (and any orphaned runs)."""
        if self._wrote:
            fold(self.path, [self.run["run_id"]])

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        try:
            self.fold()
        except (OSError, ResultsFileError):
            if kind is None:
                raise
            # Already failing (a full disk, Ctrl-C): the fragments stay readable beside the file,
            # and the next writer of the file (or ``rnnbench compact``) folds them.


def compact(paths: Iterable[str | os.PathLike]) -> dict[Path, int]:
    """Fold the fragments of finished or killed runs into their results files (``rnnbench compact``).

    Runs whose writer is still alive are left to fold themselves. Returns the rows
    added per results file that had fragments.
    """
    return {path: fold(path) for path in results_files(paths) if parts_dir(path).is_dir()}


def append(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]], run: Mapping[str, Any]) -> None:
    """Append ``rows`` of ``run`` to results file ``path`` now (one fragment, folded at once)."""
    with RunWriter(path, run) as writer:
        writer.append(rows)


def merge(paths: Iterable[str | os.PathLike]) -> tuple[pa.Table, dict[str, Any]]:
    """The rows and run records of several results files, for :func:`write`.

    Each file is read like any other (older versions migrated, unfolded fragments
    included); a run found in two files (a copy, or a file merged before) is refused,
    since its rows would count twice.
    """
    tables, runs, seen = [], [], {}
    for path in paths:
        table, metadata = read_results(path)
        for run in metadata["runs"]:
            if run["run_id"] in seen:
                raise ResultsFileError(f"{path}: run {run['run_id']} is also in {seen[run['run_id']]}; "
                                       "merging would count its rows twice")
            seen[run["run_id"]] = path
            runs.append({k: v for k, v in run.items() if k != "folded_through"})
        tables.append(table)
    if not tables:
        raise ResultsFileError("no results files to merge")
    return pa.concat_tables(tables), {"schema_version": SCHEMA_VERSION, "runs": runs}


def completed_point_ids(path: str | os.PathLike) -> set[str]:
    """Points already measured successfully in results file ``path`` (the ``--resume`` look-up)."""
    table, _ = read_results(path)
    frame = table.select(["point_id", "status"]).to_pandas()
    return set(frame.loc[frame["status"] == "ok", "point_id"])


def results_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files and directories into the results files they hold, sorted.

    A directory holds ``*.parquet`` files and, for runs not yet folded, ``*.parquet.parts``
    folders (whose results file may not exist yet); a path given as a file is kept as is.
    """
    found: list[Path] = []
    for given in map(Path, paths):
        if not given.is_dir() or is_results_name(given):
            found.append(given)
            continue
        names = {p for p in given.iterdir() if p.is_file() and is_results_name(p)}
        names |= {p.with_name(p.name[: -len(PARTS_SUFFIX)]) for p in given.iterdir()
                  if p.is_dir() and p.name.endswith(PARTS_SUFFIX) and is_results_name(Path(p.stem))}
        found.extend(sorted(names))
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
        runs.extend({**r, "source_file": str(path)} for r in metadata["runs"])
    if not frames:
        empty = SCHEMA.empty_table().to_pandas()
        empty["source_file"] = pd.Series(dtype="string")
        return empty, runs, problems
    return pd.concat(frames, ignore_index=True), runs, problems


def new_file_name(run_id: str) -> str:
    """The results file of one run in an output directory: date, time and the run's unique id."""
    return f"{FILE_PREFIX}{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{run_id}{SUFFIX}"


def resolve_output(out: Path, run_id: str, resume: bool) -> Path:
    """The results file for ``--out``: a ``.parquet`` path as given, or a new file in a directory.

    In a directory, each run gets its own file named by its run id (so two sweeps
    started in the same second never share one); ``--resume`` continues the newest
    results file there (folded or not).
    """
    if is_results_name(out):
        return out
    if resume and out.is_dir():
        existing = [p for p in results_files([out]) if p.name.startswith(FILE_PREFIX)]
        if existing:
            return max(existing, key=_modified)
    return out / new_file_name(run_id)


def _modified(path: Path) -> float:
    parts = parts_dir(path)
    times = [p.stat().st_mtime for p in (path, parts) if p.exists()]
    return max(times)


def check_output(path: Path) -> None:
    """Refuse, before any work, a results file that cannot be written or read back.

    Raises ``OSError`` (with a clear ``strerror``) when ``path``'s folder cannot hold
    files or ``path`` is a folder; :class:`ResultsFileError` when an existing file is
    not readable results (it is then left untouched).
    """
    for parent in [path.parent, *path.parent.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(20, f"{parent} is a file, not a folder")
            break
    if path.is_dir():
        raise IsADirectoryError(21, f"{path} is a folder, not a results file")
    files.check_writable(path.parent)
    if exists(path):
        read_results(path)
