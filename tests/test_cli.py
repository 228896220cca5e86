"""`rnnbench sweep` and `rnnbench env` end to end through Typer's CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rnnbench.cli import app
from rnnbench.results import store

runner = CliRunner()
TINY = ["--seq-lens", "6", "--hidden", "8", "--batch", "1", "--input-size", "3",
        "--min-time", "0.01", "--repeats", "2"]


def sweep(*args):
    return runner.invoke(app, ["sweep", *args])


def test_sweep_writes_parquet_and_prints_a_summary(tmp_path):
    out = tmp_path / "r.parquet"
    result = sweep("--cells", "gru,reluadd", "--backends", "float,onnxruntime", *TINY,
                   "--out", str(out))
    assert result.exit_code == 0, result.output
    frame, metadata = store.read(out)
    assert set(frame["cell"]) == {"gru", "reluadd"}
    assert set(frame["status"]) == {"ok", "skipped"}  # reluadd has no ONNX operator
    assert frame["is_warmup"].any() and not frame["is_warmup"].all()
    run = metadata["runs"][0]
    assert run["args"]["argv"] is not None and run["env"]["cpu_model"]
    assert run["settings"]["repeats"] == 2
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("| cell | backend")
    reluadd_float = next(line for line in lines if line.startswith("| reluadd | float"))
    assert reluadd_float.rstrip(" |").split("|")[-1].strip() != "–"  # ratio to GRU present


def test_sweep_into_a_directory_and_resume_skips_done_points(tmp_path):
    args = ["--cells", "gru", "--backends", "float", *TINY, "--out", str(tmp_path)]
    assert sweep(*args).exit_code == 0
    [first] = list(tmp_path.glob("rnnbench-*.parquet"))
    rows_before = len(store.read(first)[0])
    result = sweep(*args, "--resume")
    assert result.exit_code == 0, result.output
    assert list(tmp_path.glob("rnnbench-*.parquet")) == [first]
    assert len(store.read(first)[0]) == rows_before
    assert "1 points already ok" in result.stderr


def test_resume_measures_only_missing_points(tmp_path):
    out = tmp_path / "r.parquet"
    assert sweep("--cells", "gru", "--backends", "float", *TINY, "--out", str(out)).exit_code == 0
    result = sweep("--cells", "gru,lstm", "--backends", "float", *TINY, "--out", str(out),
                   "--resume", "--format", "json")
    assert result.exit_code == 0
    frame, metadata = store.read(out)
    assert frame.groupby("cell")["run_id"].nunique().to_dict() == {"gru": 1, "lstm": 1}
    assert len(metadata["runs"]) == 2
    assert [r["cell"] for r in json.loads(result.stdout)] == ["lstm"]


def test_failures_do_not_stop_the_sweep(tmp_path, plugin_backends):
    out = tmp_path / "r.parquet"
    result = sweep("--cells", "gru", "--backends", "test-failing,test-sleeping,float", *TINY,
                   "--timeout", "3", "--out", str(out))
    assert result.exit_code == 0, result.output
    frame, _ = store.read(out)
    status = frame.drop_duplicates("backend").set_index("backend")["status"].to_dict()
    assert status == {"test-failing": "error", "test-sleeping": "timeout", "float": "ok"}


def test_dry_run_prints_the_grid_without_measuring(tmp_path):
    result = sweep("--cells", "gru,lstm", "--backends", "float,torch", "--seq-lens", "5,50",
                   "--hidden", "8", "--dry-run", "--out", str(tmp_path))
    assert result.exit_code == 0
    assert len(result.stdout.strip().splitlines()) == 8
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args,message", [
    (["--cells", "gru,rnn"], "unknown cells 'rnn'; valid cells: gru, lstm, reluadd"),
    (["--backends", "gpu"], "unknown backends 'gpu'; valid backends: float, torch"),
    (["--cells", ","], "--cells is empty"),
    (["--seq-lens", ""], "--seq-lens is empty"),
    (["--hidden", "16,0"], "--hidden: 0 is not positive"),
    (["--hidden", "-4"], "--hidden: -4 is not positive"),
    (["--batch", "1.5"], "--batch: '1.5' is not an integer"),
    (["--input-size", "x"], "--input-size: 'x' is not an integer"),
    (["--min-time", "0"], "--min-time must be positive"),
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["-p", "float.bits=8"], "backend 'float' takes no parameters"),
    (["-p", "nonsense"], "expected BACKEND.KEY=VALUE"),
])
def test_bad_input_is_one_line_and_nonzero(tmp_path, args, message):
    result = sweep(*args, "--out", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_unwritable_out_is_refused(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = sweep("--cells", "gru", "--backends", "float", *TINY, "--out", str(blocker / "sub"))
    assert result.exit_code == 2 and "cannot write results to" in result.stderr


def test_corrupt_results_file_on_resume_is_left_untouched(tmp_path):
    out = tmp_path / "r.parquet"
    out.write_bytes(b"definitely not parquet")
    result = sweep("--cells", "gru", "--backends", "float", *TINY, "--out", str(out), "--resume")
    assert result.exit_code == 2
    assert "not a readable Parquet file" in result.stderr and "left untouched" in result.stderr
    assert out.read_bytes() == b"definitely not parquet"


def test_argument_errors_from_the_real_entry_point_are_one_line():
    code = "from rnnbench.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", code, "sweep", "--repeats", "many"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("rnnbench: error:") and done.stderr.count("\n") == 1
    assert done.stdout == ""


def test_env_prints_the_recorded_environment_as_json():
    result = runner.invoke(app, ["env"])
    assert result.exit_code == 0
    record = json.loads(result.stdout)
    assert record["cpu_model"] and record["python_version"].startswith("3.")
    assert "torch_version" in record and "git_commit" in record
