"""Sweeps that write to one results file at the same time keep every row of every run."""

from __future__ import annotations

import subprocess
import sys

from rnnbench.results import store

SWEEP = ["sweep", "--cells", "gru,reluadd", "--backends", "float", "--seq-lens", "4",
         "--hidden", "4,8", "--input-size", "2", "--min-time", "0.01", "--repeats", "2",
         "--warmup", "0"]


def test_two_sweeps_into_one_file_at_once_lose_nothing(tmp_path):
    out = tmp_path / "shared.parquet"
    code = "from rnnbench.cli import main; main()"
    sweeps = [subprocess.Popen([sys.executable, "-c", code, *SWEEP, "--seed", str(seed), "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for seed in (1, 2)]
    for sweep in sweeps:
        _, stderr = sweep.communicate(timeout=300)
        assert sweep.returncode == 0, stderr
    frame, metadata = store.read(out)
    assert len(metadata["runs"]) == 2
    assert frame.groupby("run_id")["point_id"].nunique().tolist() == [4, 4]
    assert frame.groupby("run_id")["seed"].first().sort_values().tolist() == [1, 2]
    assert not store.parts_dir(out).exists()
