"""Sweeps on a Dask cluster: same rows as in-process, worker loss, resume, CLI errors.

One local cluster of two single-threaded worker processes serves the whole module
(starting one costs seconds); the test that kills workers runs last.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

import pandas as pd
import pytest
from typer.testing import CliRunner

from rnnbench import backends, env, grid
from rnnbench.cli import app
from rnnbench.executors import DaskCluster, Sequential, worker_problem
from rnnbench.results import store
from rnnbench.sweep import new_run, new_run_id, run_sweep

from .conftest import FAST


def _points(hidden_sizes=(4, 8), cells=("gru", "lstm"), backend="float"):
    return grid.expand(list(cells), [backend], [3], list(hidden_sizes), [1], input_size=2)


def _sweep(points, path, executor, **kwargs):
    run = new_run(new_run_id(), {"test": True}, FAST)
    return run_sweep(points, FAST, path, run, executor=executor, **kwargs)


@pytest.fixture(scope="module")
def cluster():
    os.environ["RNNBENCH_TEST_PID"] = str(os.getpid())  # the worker-killing backend spares us
    local = DaskCluster.local(2)
    yield local
    local.close()


def _on(cluster: DaskCluster) -> DaskCluster:
    """An executor on the shared cluster that leaves it running when the sweep closes it."""
    return DaskCluster(cluster.client)


def test_cluster_yields_the_same_points_and_columns_as_in_process(tmp_path, cluster):
    points = _points()
    _sweep(points, tmp_path / "local.parquet", Sequential())
    outcome = _sweep(points, tmp_path / "dask.parquet", _on(cluster))
    assert outcome.statuses == {"ok": len(points)}
    local, _ = store.read(tmp_path / "local.parquet")
    remote, _ = store.read(tmp_path / "dask.parquet")
    assert set(remote["point_id"]) == set(local["point_id"]) == {p.point_id for p in points}
    filled = set(remote.columns[remote.notna().all()])
    assert filled == set(local.columns[local.notna().all()])
    assert set(remote.columns[remote.isna().all()]) == set(local.columns[local.isna().all()])
    # Provenance is taken where the point was measured: here, this machine.
    assert set(remote["hostname"]) == {socket.gethostname()}
    assert set(remote["cpu_model"]) == {env.cpu_model()}


def test_points_on_workers_run_with_default_allocator_settings(tmp_path, cluster):
    """Dask's workers trim freed memory at once; the points they measure must not."""
    def started_with_trimming() -> bool:  # the worker's environment at exec, as the nanny set it
        with open("/proc/self/environ") as environ:
            return "MALLOC_TRIM_THRESHOLD_=65536" in environ.read().split("\0")

    assert set(cluster.client.run(started_with_trimming).values()) == {True}
    backends.register("test-allocator", "tests.plugin_backends:ALLOCATOR_REPORTING")
    try:
        _sweep(_points(hidden_sizes=(4,), cells=("gru",), backend="test-allocator"), tmp_path / "r.parquet",
               _on(cluster))
    finally:
        backends.unregister("test-allocator")
    frame, _ = store.read(tmp_path / "r.parquet")
    assert list(frame["error_message"]) == ["RuntimeError: MALLOC_TRIM_THRESHOLD_=None"]


class _ClientCrash(Exception):
    pass


def _points_on_scheduler(cluster: DaskCluster) -> list[str]:
    def keys(dask_scheduler):
        return [str(k) for k in dask_scheduler.tasks if str(k).startswith("rnnbench-point-")]

    return cluster.client.run_on_scheduler(keys)


def test_interrupted_distributed_sweep_resumes_without_duplicates(tmp_path, cluster):
    points = _points(hidden_sizes=(4, 6, 8))
    path = tmp_path / "r.parquet"

    def crash_after_first(point, rows):
        raise _ClientCrash

    with pytest.raises(_ClientCrash):
        _sweep(points, path, _on(cluster), on_point=crash_after_first)
    assert len(store.completed_point_ids(path)) == 1
    # The interrupted sweep's other points were cancelled, not left queued on the cluster.
    deadline = time.monotonic() + 10
    while _points_on_scheduler(cluster) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _points_on_scheduler(cluster) == []

    outcome = _sweep(points, path, _on(cluster), resume=True)
    assert outcome.skipped_done == 1 and outcome.statuses == {"ok": len(points) - 1}
    frame, metadata = store.read(path)
    assert store.completed_point_ids(path) == {p.point_id for p in points}
    assert len(metadata["runs"]) == 2
    assert frame.groupby("point_id")["run_id"].nunique().eq(1).all()  # nothing measured twice


def test_a_worker_lost_mid_point_is_an_error_row_and_the_sweep_goes_on(tmp_path, cluster):
    backends.register("test-worker-killing", "tests.plugin_backends:WORKER_KILLING")
    try:
        killer = _points(hidden_sizes=(4,), cells=("gru",), backend="test-worker-killing")
        healthy = _points(hidden_sizes=(5,))
        outcome = _sweep(killer + healthy, tmp_path / "r.parquet", _on(cluster))
    finally:
        backends.unregister("test-worker-killing")
    assert outcome.statuses == {"error": 1, "ok": len(healthy)}
    frame, _ = store.read(tmp_path / "r.parquet")
    [lost] = frame[frame["backend"] == "test-worker-killing"].itertuples()
    assert lost.status == "error" and lost.error_type == "WorkerLost"
    assert "worker lost" in lost.error_message and "2 attempts" in lost.error_message
    assert pd.isna(lost.hostname)  # not measured anywhere: no machine to name
    assert set(frame.loc[frame["backend"] == "float", "status"]) == {"ok"}
    # The workers Dask started in place of the killed ones can measure points too.
    cluster.client.wait_for_workers(2, timeout=120)
    assert set(cluster.client.run(worker_problem).values()) == {None}


runner = CliRunner()
TINY = ["sweep", "--cells", "gru", "--backends", "float", "--seq-lens", "3", "--hidden", "4",
        "--input-size", "2", "--min-time", "0.01", "--repeats", "2"]


@pytest.mark.parametrize("args,message", [
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "--workers and --scheduler exclude"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--scheduler", "nonsense://x"], "cannot connect to Dask scheduler 'nonsense://x'"),
    (["--scheduler", "tcp://127.0.0.1:1"], "cannot connect to Dask scheduler 'tcp://127.0.0.1:1'"),
])
def test_bad_cluster_options_are_one_line_and_write_nothing(tmp_path, args, message):
    out = tmp_path / f"{uuid.uuid4().hex}.parquet"
    result = runner.invoke(app, [*TINY, *args, "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []
