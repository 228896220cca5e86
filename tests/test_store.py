"""The results store: schema, footer metadata, atomic appends, refusing bad files."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rnnbench.results import store


def _row(**extra):
    return {"run_id": "r1", "point_id": "p1", "kind": "timing", "cell": "gru",
            "backend": "float", "status": "ok", "wall_time_s": 0.5, **extra}


def test_rows_follow_the_schema_and_missing_columns_are_null():
    table = store.rows_to_table([_row()])
    assert table.schema == store.SCHEMA
    assert table.column("schema_version").to_pylist() == [store.SCHEMA_VERSION]
    assert table.column("tenseal_version").to_pylist() == [None]


def test_unknown_columns_are_refused():
    with pytest.raises(ValueError, match="wall_time"):
        store.rows_to_table([_row(wall_time=1.0)])


def test_append_keeps_rows_and_records_each_run_in_the_footer(tmp_path):
    path = tmp_path / "r.parquet"
    store.append(path, [_row()], {"run_id": "r1", "args": {"a": 1}})
    store.append(path, [_row(run_id="r2"), _row(run_id="r2")], {"run_id": "r2"})
    frame, metadata = store.read(path)
    assert list(frame["run_id"]) == ["r1", "r2", "r2"]
    assert [r["run_id"] for r in metadata["runs"]] == ["r1", "r2"]
    assert metadata["runs"][0]["args"] == {"a": 1}
    raw = pq.read_schema(path).metadata[store.METADATA_KEY]
    assert json.loads(raw)["schema_version"] == store.SCHEMA_VERSION


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "r.parquet"
    store.append(path, [_row()], {"run_id": "r1"})
    before = path.read_bytes()

    def broken_write(table, where, **kwargs):
        with open(where, "wb") as handle:
            handle.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(store.pq, "write_table", broken_write)
    with pytest.raises(OSError, match="disk full"):
        store.append(path, [_row(run_id="r2")], {"run_id": "r2"})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".r.parquet.lock", "r.parquet"]  # no temporary


def test_corrupt_and_foreign_files_are_reported(tmp_path):
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"not parquet at all")
    with pytest.raises(store.ResultsFileError, match="not a readable Parquet file"):
        store.read(corrupt)
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), foreign)
    with pytest.raises(store.ResultsFileError, match="no rnnbench footer"):
        store.read(foreign)
    future = tmp_path / "future.parquet"
    table = store.rows_to_table([_row()]).replace_schema_metadata(
        {store.METADATA_KEY: json.dumps({"schema_version": 99, "runs": []})})
    pq.write_table(table, future)
    with pytest.raises(store.ResultsFileError, match="schema version 99"):
        store.read(future)


def test_read_many_loads_good_files_and_names_bad_ones(tmp_path):
    store.append(tmp_path / "a.parquet", [_row()], {"run_id": "r1"})
    (tmp_path / "b.parquet").write_bytes(b"garbage")
    frame, runs, problems = store.read_many([tmp_path])
    assert len(frame) == 1 and frame["source_file"].iloc[0].endswith("a.parquet")
    assert [r["run_id"] for r in runs] == ["r1"]
    assert len(problems) == 1 and "b.parquet" in problems[0]


def test_completed_point_ids_only_counts_ok_points(tmp_path):
    path = tmp_path / "r.parquet"
    rows = [_row(point_id="ok1"), _row(point_id="bad", status="error"),
            _row(point_id="late", status="timeout")]
    store.append(path, rows, {"run_id": "r1"})
    assert store.completed_point_ids(path) == {"ok1"}


def test_results_files_get_the_permissions_the_umask_allows(tmp_path):
    path = tmp_path / "r.parquet"
    previous = os.umask(0o022)
    try:
        store.append(path, [_row()], {"run_id": "r1"})
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600
