"""The runner: samples, warm-up flags, error metrics, and failures that become rows."""

from __future__ import annotations

import pandas as pd
import pytest

from rnnbench.grid import Point, expand
from rnnbench.measure import Settings
from rnnbench.results.store import rows_to_table
from rnnbench.runner import run_point

from .conftest import FAST


def _point(backend="float", cell="gru", **kw):
    fields = dict(cell=cell, backend=backend, seq_len=8, hidden_size=8, input_size=4,
                  batch_size=2)
    return Point.make(**{**fields, **kw})


def test_a_point_gives_warmup_and_timed_samples_with_facts():
    rows = run_point(_point(), FAST)
    frame = rows_to_table(rows).to_pandas()
    assert (frame["status"] == "ok").all()
    assert frame["is_warmup"].tolist()[:FAST.warmup] == [True] * FAST.warmup
    timed = frame[~frame["is_warmup"]]
    assert FAST.repeats <= len(timed) <= FAST.max_repeats
    assert (timed["wall_time_s"] > 0).all() and (timed["loops"] >= 1).all()
    assert (frame["time_per_step_s"] == frame["wall_time_s"] / frame["loops"] / 8).all()
    assert frame["max_abs_err"].iloc[0] <= 1e-4
    assert frame["ops_weight_mul"].iloc[0] == 3 * 8 * (4 + 8)
    assert frame["cpu_model"].notna().all() and frame["peak_rss_bytes"].iloc[0] > 0
    assert frame["repeat_idx"].tolist() == list(range(len(frame)))


def test_first_run_counts_as_a_sample_where_the_backend_declares_it(plugin_backends):
    """No warm-up asked for: the accuracy run is the first timed sample, not an extra run."""
    settings = Settings(**{**FAST.__dict__, "warmup": 0, "min_time": 0.0})
    frame = rows_to_table(run_point(_point("test-first-run-timed"), settings)).to_pandas()
    assert len(frame) == settings.repeats and not frame["is_warmup"].any()
    assert (frame["n_eval"] == settings.repeats).all()  # runs made: exactly the samples
    with_warmup = rows_to_table(run_point(_point("test-first-run-timed"), FAST)).to_pandas()
    assert with_warmup["is_warmup"].sum() == FAST.warmup
    assert (with_warmup["n_eval"] == 1 + len(with_warmup)).all()  # accuracy run kept apart


def test_skipped_point_is_one_row_with_a_reason():
    rows = run_point(_point("onnxruntime", "reluadd"), FAST)
    assert len(rows) == 1
    assert rows[0]["status"] == "skipped" and "reluadd" in rows[0]["error_message"]


def test_failing_point_becomes_an_error_row(plugin_backends):
    rows = run_point(_point("test-failing"), FAST)
    assert [(r["status"], r["error_type"]) for r in rows] == [("error", "RuntimeError")]
    assert "always fails" in rows[0]["error_message"]


def test_hung_point_is_killed_at_the_timeout(plugin_backends):
    settings = Settings(**{**FAST.__dict__, "timeout": 2.0})
    rows = run_point(_point("test-sleeping"), settings)
    assert [r["status"] for r in rows] == ["timeout"]
    assert "2 s" in rows[0]["error_message"]


def test_crashed_child_becomes_an_error_row(plugin_backends):
    rows = run_point(_point("test-crashing"), FAST)
    assert rows[0]["status"] == "error" and "exit code 3" in rows[0]["error_message"]


def test_grid_order_and_ids_are_deterministic():
    points = expand(["gru", "reluadd"], ["float", "torch"], [10], [16, 32], [1], 4)
    assert [p.cell for p in points[:2]] == ["gru", "reluadd"]  # cells side by side
    assert len(points) == len({p.point_id for p in points}) == 8
    again = expand(["gru", "reluadd"], ["float", "torch"], [10], [16, 32], [1], 4)
    assert [p.point_id for p in points] == [p.point_id for p in again]
    assert _point().point_id != _point(seed=1).point_id
    assert pd.Series([p.point_id for p in points]).str.fullmatch("[0-9a-f]{16}").all()


def test_a_backend_fact_outside_the_schema_is_an_error_row(plugin_backends):
    """Checked in the child: one bad key from a backend is that point's error, not a crashed sweep."""
    rows = run_point(_point("test-bad-facts"), FAST)
    assert len(rows) == 1 and rows[0]["status"] == "error" and rows[0]["error_type"] == "BadRow"
    assert "not_a_results_column" in rows[0]["error_message"]
    rows_to_table(rows)  # the error row itself fits the schema


def test_repeats_and_min_time_above_the_cap_are_honoured():
    """--repeats 100 and --min-time beyond 50 samples were silently capped."""
    many = Settings(**{**FAST.__dict__, "repeats": 60, "max_repeats": 50, "min_time": 0.0})
    frame = rows_to_table(run_point(_point(), many)).to_pandas()
    assert (~frame["is_warmup"]).sum() >= 60
    long = Settings(**{**FAST.__dict__, "repeats": 2, "max_repeats": 3, "min_time": 0.3})
    frame = rows_to_table(run_point(_point(), long)).to_pandas()
    timed = frame[~frame["is_warmup"]]
    assert len(timed) <= 3 and timed["wall_time_s"].sum() >= 0.3


_BUSY_THREADS = """
import glob, os, sys
import numpy as np
from rnnbench import backends, measure
from rnnbench.cells import Weights, make_cell
import rnnbench.backends.float32, rnnbench.backends.integer.backend  # what the fork server preloads

backend, cell = sys.argv[1], sys.argv[3]
threads, hidden, batch = int(sys.argv[2]), int(sys.argv[4]), int(sys.argv[5])
measure.set_threads(threads)

def cpu_ticks():
    ticks = {}
    for task in glob.glob(f"/proc/{os.getpid()}/task/*"):
        fields = open(task + "/stat").read().rsplit(")", 1)[1].split()
        ticks[task] = int(fields[11]) + int(fields[12])
    return ticks

x = np.random.default_rng(0).standard_normal((100, batch, 16)).astype(np.float32)
weights = Weights.from_module(make_cell(cell, 16, hidden, seed=0))
prepared = backends.get(backend).prepare(weights, {}, x, threads=threads)
prepared.run(x)
before = cpu_ticks()
for _ in range(10):
    prepared.run(x)
after = cpu_ticks()
print(sum(1 for task, t in after.items() if t > before.get(task, 0)))
"""


@pytest.mark.parametrize(("backend", "threads", "cell", "hidden", "batch"), [
    # PyTorch's LSTM (oneDNN) once ran on two threads in points that record one thread.
    ("torch", 1, "lstm", 512, 1),
    # Our float kernels at 2 threads: units split (H >= 256), batch split (odd B), MKL's threads (B = 1).
    ("float", 1, "gru", 256, 32), ("float", 2, "gru", 256, 32), ("float", 2, "lstm", 192, 65),
    ("float", 2, "lstm", 256, 1), ("torch", 2, "gru", 256, 32),
    ("onnxruntime", 2, "gru", 256, 32),
    ("int8", 1, "gru", 256, 32), ("int8", 2, "gru", 256, 32), ("int16", 2, "reluadd", 256, 32),
])
def test_threads_means_that_many_busy_threads(backend, threads, cell, hidden, batch):
    """``--threads N`` gives every backend N threads that do work, ours included."""
    import subprocess
    import sys

    busy = subprocess.run([sys.executable, "-c", _BUSY_THREADS, backend, str(threads), cell, str(hidden),
                           str(batch)], capture_output=True, text=True, check=True)
    assert busy.stdout.strip() == str(threads), busy.stdout + busy.stderr
