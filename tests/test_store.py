"""The results store: schema, footer metadata, atomic appends, refusing bad files."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess

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


def _writer_process(path, run_id, points):
    with store.RunWriter(path, {"run_id": run_id}) as writer:
        for i in range(points):
            writer.append([_row(point_id=f"{run_id}-{i}", repeat_idx=k) for k in range(3)])


def test_concurrent_writers_to_one_file_lose_no_row(tmp_path):
    """Two sweeps appending to one file each lost the other's run (read, add, rename, no lock)."""
    path = tmp_path / "shared.parquet"
    store.append(path, [_row(run_id="r0")], {"run_id": "r0"})
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_writer_process, args=(path, f"w{n}", 25)) for n in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(120)
        assert process.exitcode == 0
    frame, metadata = store.read(path)
    assert len(frame) == 1 + 4 * 25 * 3
    assert sorted(r["run_id"] for r in metadata["runs"]) == ["r0", "w0", "w1", "w2", "w3"]
    assert not store.parts_dir(path).exists()  # every run folded its fragments
    assert frame.groupby("run_id").size().to_dict() == {"r0": 1, "w0": 75, "w1": 75, "w2": 75, "w3": 75}


def test_each_run_in_a_directory_gets_its_own_file(tmp_path):
    """Names had one-second resolution: two sweeps started in the same second shared one file."""
    first = store.resolve_output(tmp_path, "aaaa1111", resume=False)
    second = store.resolve_output(tmp_path, "bbbb2222", resume=False)
    assert first != second and "aaaa1111" in first.name and "bbbb2222" in second.name
    store.append(first, [_row()], {"run_id": "r1"})
    assert store.resolve_output(tmp_path, "cccc3333", resume=True) == first
    assert store.resolve_output(tmp_path / "X.PARQUET", "r", resume=False) == tmp_path / "X.PARQUET"


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_killed_writers_fragments_are_read_and_folded_by_the_next_writer(tmp_path):
    path = tmp_path / "r.parquet"
    killed = store.RunWriter(path, {"run_id": "killed"})
    killed.append([_row(run_id="killed", point_id="a")])
    killed.append([_row(run_id="killed", point_id="b")])
    owner = store.parts_dir(path) / "killed" / "owner.json"
    owner.write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid()}))
    assert sorted(store.read(path)[0]["point_id"]) == ["a", "b"]  # readers see unfolded fragments
    assert store.completed_point_ids(path) == {"a", "b"}  # so --resume does too
    store.append(path, [_row(run_id="next", point_id="c")], {"run_id": "next"})
    assert not store.parts_dir(path).exists()
    frame, metadata = store.read_table(path)[0].to_pandas(), store.read(path)[1]
    assert sorted(frame["point_id"]) == ["a", "b", "c"]
    assert {r["run_id"] for r in metadata["runs"]} == {"killed", "next"}


def test_a_live_writers_fragments_are_left_to_it(tmp_path):
    path = tmp_path / "r.parquet"
    live = store.RunWriter(path, {"run_id": "live"})
    live.append([_row(run_id="live", point_id="a")])
    store.append(path, [_row(run_id="other", point_id="b")], {"run_id": "other"})
    assert sorted(store.read_table(path)[0].column("point_id").to_pylist()) == ["b"]
    assert sorted(store.read(path)[0]["point_id"]) == ["a", "b"]
    live.fold()
    assert sorted(store.read_table(path)[0].column("point_id").to_pylist()) == ["a", "b"]


def test_a_fold_interrupted_before_cleanup_counts_no_row_twice(tmp_path, monkeypatch):
    path = tmp_path / "r.parquet"
    writer = store.RunWriter(path, {"run_id": "r1"})
    writer.append([_row(point_id="a")])
    monkeypatch.setattr(store.shutil, "rmtree", lambda *a, **k: None)  # killed after the rename
    writer.fold()
    monkeypatch.undo()
    assert (store.parts_dir(path) / "r1").is_dir()
    assert list(store.read(path)[0]["point_id"]) == ["a"]
    writer.append([_row(point_id="b")])  # the run goes on, then folds again
    writer.fold()
    assert sorted(store.read(path)[0]["point_id"]) == ["a", "b"]
    again = store.RunWriter(path, {"run_id": "r1"})  # a later writer of the same run (train)
    again.append([_row(point_id="c")])
    again.fold()
    assert sorted(store.read(path)[0]["point_id"]) == ["a", "b", "c"]


def test_temporaries_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    """SIGKILL during a write left a hidden .x.parquet.*.tmp that was never cleaned up."""
    path = tmp_path / "r.parquet"
    host = socket.gethostname()
    stale = tmp_path / f".r.parquet.{host}.{_dead_pid()}.0a1b2c3d.tmp"
    in_use = tmp_path / f".r.parquet.{host}.{os.getpid()}.0a1b2c3e.tmp"
    stale.write_bytes(b"half")
    in_use.write_bytes(b"being written")
    store.append(path, [_row()], {"run_id": "r1"})
    assert not stale.exists() and in_use.exists()


def _version_1_file(path, drop=("ckks_polys", "ckks_packing", "agreement", "train_step"), runs=True):
    """A results file as schema version 1 wrote it: fewer columns, version 1 in the footer."""
    table = store.rows_to_table([_row(), _row(point_id="p2", status="error")])
    table = table.drop_columns(list(drop))
    footer = {"schema_version": 1, **({"runs": [{"run_id": "r1"}]} if runs else {})}
    pq.write_table(table.replace_schema_metadata({store.METADATA_KEY: json.dumps(footer)}), path)
    return path


def test_files_of_the_previous_schema_version_are_read_with_new_columns_null(tmp_path):
    old = _version_1_file(tmp_path / "old.parquet")
    frame, metadata = store.read(old)
    assert list(frame.columns) == store.SCHEMA.names and len(frame) == 2
    assert frame["ckks_polys"].isna().all() and frame["agreement"].isna().all()
    assert list(frame["status"]) == ["ok", "error"]
    rows, runs, problems = store.read_many([tmp_path])
    assert len(rows) == 2 and not problems
    store.append(old, [_row(run_id="r2", point_id="p3")], {"run_id": "r2"})  # appending migrates it
    table, metadata = store.read_table(old)
    assert table.num_rows == 3 and [r["run_id"] for r in metadata["runs"]] == ["r1", "r2"]
    raw = json.loads(pq.read_schema(old).metadata[store.METADATA_KEY])
    assert raw["schema_version"] == store.SCHEMA_VERSION


def test_a_footer_without_runs_is_read(tmp_path):
    """A footer without ``runs`` raised KeyError after the point was measured."""
    old = _version_1_file(tmp_path / "old.parquet", runs=False)
    assert store.read(old)[1]["runs"] == []
    store.append(old, [_row(run_id="r2")], {"run_id": "r2"})
    assert [r["run_id"] for r in store.read(old)[1]["runs"]] == ["r2"]


def test_a_column_of_another_type_is_a_results_file_error(tmp_path):
    table = store.rows_to_table([_row()]).set_column(
        store.SCHEMA.get_field_index("hidden_size"), "hidden_size", pa.array(["sixteen"]))
    bad = tmp_path / "bad.parquet"
    pq.write_table(table.replace_schema_metadata(
        {store.METADATA_KEY: json.dumps({"schema_version": 1, "runs": []})}), bad)
    with pytest.raises(store.ResultsFileError, match="hidden_size"):
        store.read(bad)
    good = tmp_path / "good.parquet"
    store.append(good, [_row()], {"run_id": "r1"})
    rows, _, problems = store.read_many([tmp_path])
    assert len(rows) == 1 and len(problems) == 1 and "hidden_size" in problems[0]


def test_a_missing_file_is_reported_as_missing(tmp_path):
    with pytest.raises(store.ResultsFileError, match="no such file"):
        store.read(tmp_path / "nope.parquet")


def test_compact_folds_the_runs_of_killed_writers_only(tmp_path):
    for name, pid in (("killed", _dead_pid()), ("live", os.getpid())):
        writer = store.RunWriter(tmp_path / f"{name}.parquet", {"run_id": name})
        writer.append([_row(run_id=name, point_id=name)])
        owner = store.parts_dir(writer.path) / name / "owner.json"
        owner.write_text(json.dumps({"host": socket.gethostname(), "pid": pid}))
    folded = store.compact([tmp_path])
    assert folded == {tmp_path / "killed.parquet": 1, tmp_path / "live.parquet": 0}
    assert not store.parts_dir(tmp_path / "killed.parquet").exists()
    assert store.parts_dir(tmp_path / "live.parquet").is_dir()
    rows, runs, problems = store.read_many([tmp_path])
    assert sorted(rows["point_id"]) == ["killed", "live"] and not problems
