"""Benchmark: the cost of writing one more point as a results file grows.

``python -m rnnbench.results.append_benchmark [--points 10000] [--rows 30]`` writes one
run of ``--points`` points of ``--rows`` rows each (the size of a timing point) through
:class:`rnnbench.results.store.RunWriter`, times every append, and prints a Markdown
table of the median milliseconds per append around each file size, next to what
rewriting the whole file per point (the store before fragments) costs at that size,
and the one fold at the end. A benchmark for the README, never a timed test.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from rnnbench import env
from rnnbench.results import store

CHECKPOINTS = (10, 100, 1_000, 3_000, 10_000)


def _rows(point: int, rows: int) -> list[dict]:
    return [{"point_id": f"p{point:06d}", "kind": "timing", "cell": "gru", "backend": "float",
             "status": "ok", "repeat_idx": k, "wall_time_s": 1e-3 * k, "time_per_step_s": 1e-5,
             "seq_len": 100, "hidden_size": 64, **env.provenance()} for k in range(rows)]


def _rewrite_ms(path: Path, table: pa.Table, new: pa.Table) -> float:
    """One append the old way: read the whole file, add the point, write it all again."""
    start = time.perf_counter()
    old, metadata = store.read_table(path)
    store.write(path, pa.concat_tables([old, new]), metadata)
    return (time.perf_counter() - start) * 1e3


def run(points: int, rows: int, window: int = 20) -> str:
    """The benchmark's Markdown table."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.parquet"
        run_record = {"run_id": "bench", "env": env.collect()}
        times: list[float] = []
        with store.RunWriter(path, run_record) as writer:
            for point in range(points):
                batch = _rows(point, rows)
                start = time.perf_counter()
                writer.append(batch)
                times.append((time.perf_counter() - start) * 1e3)
            start = time.perf_counter()
        fold_s = time.perf_counter() - start
        table = store.read_table(path)[0]
        lines = [f"CPU: {env.cpu_model()}; {rows} rows per point; median of {window} appends "
                 "around each size.", "",
                 "| points in the file | ms per append (fragments) | points/s | "
                 "ms per append (rewrite the file, before) |", "|---:|---:|---:|---:|"]
        for size in (c for c in CHECKPOINTS if c <= points):
            around = times[max(0, size - window):size]
            median = statistics.median(around)
            old = store.parts_dir(path).with_name("old.parquet")
            store.write(old, table.slice(0, size * rows), {"runs": [run_record]})
            rewrite = statistics.median(_rewrite_ms(old, table, table.slice(0, rows)) for _ in range(3))
            lines.append(f"| {size:,} | {median:.2f} | {1e3 / median:,.0f} | {rewrite:.1f} |")
        lines += ["", f"Folding all {points:,} points into the file at the end of the run: {fold_s:.1f} s."]
        return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=30)
    args = parser.parse_args()
    print(run(args.points, args.rows))


if __name__ == "__main__":
    main()
