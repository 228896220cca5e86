"""Synthetic but realistic results rows of every kind the dashboard charts.

Timing samples for float, torch, int8/int16 (with errors) and ckks (with counters),
a skipped, a failed and a timed-out point, accuracy rows and training curves. Rows are
built from real :class:`~rnnbench.grid.Point` identities and the real cost model, and
pass through :func:`rnnbench.store.rows_to_table`, so they have the stored schema.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from rnnbench.cells.costs import step_cost
from rnnbench.grid import Point
from rnnbench.results import store

CELLS = ("gru", "lstm", "reluadd")
CELL_FACTOR = {"gru": 1.0, "lstm": 1.3, "reluadd": 0.55}
BACKEND_FACTOR = {"float": 1.0, "torch": 4.0, "int8": 1.5, "int16": 1.6, "ckks": 2e5}
PROVENANCE = {"git_commit": "0123456789abcdef0123456789abcdef01234567", "git_dirty": False,
              "hostname": "bench-host", "cpu_model": "AMD EPYC (Zen 4)", "cpu_count": 2,
              "machine_id": "synthetic-machine", "rnnbench_version": "0.1.0"}
START = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


def _samples(point: Point, rng: np.random.Generator, facts: dict[str, Any], n: int = 6) -> list[dict]:
    h = point.hidden_size
    per_step = 1e-8 * BACKEND_FACTOR[point.backend] * CELL_FACTOR[point.cell] * (20 * h + 0.05 * h * h)
    common = {**point.columns(), "kind": "timing", "status": "ok", "loops": 10, "prepare_time_s": 0.01,
              **step_cost(point.cell, point.input_size, h).columns(), **facts, **PROVENANCE}
    rows = []
    for i in range(n + 1):
        t = per_step * rng.lognormal(0.0, 0.08)
        rows.append({**common, "repeat_idx": i, "is_warmup": i == 0,
                     "started_at": START + dt.timedelta(seconds=len(rows)),
                     "wall_time_s": t * point.seq_len * 10, "cpu_time_s": t * point.seq_len * 10,
                     "time_per_step_s": t})
    return rows


def _failure(point: Point, status: str, error_type: str, message: str) -> dict:
    return {**point.columns(), "kind": "timing", "status": status, "error_type": error_type,
            "error_message": message, "started_at": START, **PROVENANCE}


def synthetic_rows(run_id: str = "synthetic01", seed: int = 0, machine: dict[str, Any] | None = None,
                   days_later: int = 0) -> list[dict[str, Any]]:
    """Rows of one synthetic run covering every chart of the dashboard.

    ``machine`` overrides the provenance (another CPU, host, machine id); ``days_later``
    moves the run's timestamps, so it is the newer of two runs.
    """
    rng = np.random.default_rng(seed)
    rows: list[dict] = []

    def point(cell: str, backend: str, seq_len: int, hidden: int, **kw: Any) -> Point:
        return Point.make(cell=cell, backend=backend, seq_len=seq_len, hidden_size=hidden,
                          input_size=16, batch_size=1, **kw)

    for backend in ("float", "torch"):
        for seq_len in (10, 100):
            for hidden in (16, 64, 256):
                for cell in CELLS:
                    rows += _samples(point(cell, backend, seq_len, hidden), rng,
                                     {"max_abs_err": 1e-7, "rel_l2_err": 1e-7})
    for bits in (8, 16):
        for cell in CELLS:
            err = 2.0 ** -(bits - 2) * CELL_FACTOR[cell]
            rows += _samples(point(cell, f"int{bits}", 100, 64), rng, {
                "max_abs_err": err * 4, "mean_abs_err": err, "rel_l2_err": err * 2,
                "final_max_abs_err": err * 3, "saturation_rate": 0.001, "calibration_size": 64})
    for seq_len in (4, 16):
        for cell in CELLS:
            depth = {"gru": 9, "lstm": 10, "reluadd": 5}[cell]
            rows += _samples(point(cell, "ckks", seq_len, 16, params={"packing": "vector"}), rng, {
                "ckks_depth_per_step": depth, "ckks_refreshes": seq_len * depth // 8,
                "ckks_bytes_to_server": 40_000 * depth * seq_len, "ckks_bytes_to_client": 130_000 * seq_len,
                "ckks_keygen_s": 1.2, "ckks_eval_s": 0.5 * seq_len, "rel_l2_err": 1e-4}, n=3)
    rows.append(_failure(point("reluadd", "onnxruntime", 100, 64), "skipped", "Unsupported",
                         "ONNX has no reluadd operator"))
    rows.append(_failure(point("lstm", "torch", 1000, 1024), "timeout", "Timeout",
                         "point did not finish within 120 s"))
    rows.append(_failure(point("gru", "int8", 100, 1024), "error", "OverflowError",
                         "accumulator overflow"))

    for task, metric, base in (("adding", "mse", 0.02), ("digits", "accuracy", 0.95)):
        for cell in CELLS:
            for backend in ("float", "int8", "ckks"):
                quality = base * (1 + 0.1 * CELLS.index(cell)) if metric == "mse" \
                    else base - 0.02 * CELLS.index(cell) - (0.01 if backend == "int8" else 0)
                acc_point = point(cell, backend, 100 if backend != "ckks" else 16,
                                  64 if backend != "ckks" else 16, task=task,
                                  params={"packing": "vector"} if backend == "ckks" else None)
                rows.append({**acc_point.columns(), "kind": "accuracy", "status": "ok",
                             "metric": metric, "metric_value": quality, "n_eval": 1000,
                             "agreement": 0.99, "started_at": START, **PROVENANCE,
                             **step_cost(cell, 16, acc_point.hidden_size).columns(),
                             **({"ckks_depth_per_step": 12 + 8 * CELLS.index(cell)}
                                if backend == "ckks" else {})})
            train_point = point(cell, "torch", 50, 64, task=task)
            for step in range(0, 500, 50):
                pace = 120 * CELL_FACTOR[cell]  # the cells learn at different speeds
                if metric == "accuracy":
                    value = base * (1 - np.exp(-(step + 10) / pace))
                else:
                    value = base * (1 + 20 * np.exp(-step / pace))
                rows.append({**train_point.columns(), "kind": "train_curve", "status": "ok",
                             "metric": metric, "metric_value": float(value), "train_step": step,
                             "started_at": START, **PROVENANCE})
    shift = dt.timedelta(days=days_later)
    return [{**row, **(machine or {}), "run_id": run_id, "started_at": row["started_at"] + shift}
            for row in rows]


def run_record(run_id: str = "synthetic01", machine: dict[str, Any] | None = None,
               days_later: int = 0) -> dict[str, Any]:
    """The footer record of the synthetic run, as ``rnnbench sweep`` writes one."""
    return {"run_id": run_id, "started_at": (START + dt.timedelta(days=days_later)).isoformat(),
            "args": {"argv": ["sweep"]}, "env": {**PROVENANCE, **(machine or {})}}


def write_results(path: Path, run_id: str = "synthetic01", seed: int = 0,
                  machine: dict[str, Any] | None = None, days_later: int = 0) -> Path:
    """A results file with the synthetic run, written through the real store."""
    store.append(path, synthetic_rows(run_id, seed, machine, days_later),
                 run_record(run_id, machine, days_later))
    return path


def write_other_schema(path: Path) -> Path:
    """A valid Parquet file that is not rnnbench results (no footer)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1, 2, 3]}), path)
    return path


def write_corrupt(path: Path) -> Path:
    """Bytes that are not Parquet at all."""
    path.write_bytes(b"PAR1 this is not really parquet " + json.dumps({"x": 1}).encode())
    return path
