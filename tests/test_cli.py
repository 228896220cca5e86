"""`rnnbench sweep` and `rnnbench env` end to end through Typer's CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from rnnbench.cli import app
from rnnbench.results import store

from .conftest import default_sigint

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
    # The summary covers the earlier run's points too, so lstm has its ratio to GRU.
    summary = {r["cell"]: r for r in json.loads(result.stdout)}
    assert sorted(summary) == ["gru", "lstm"] and summary["lstm"]["vs_gru"] > 0


def test_failures_do_not_stop_the_sweep(tmp_path, plugin_backends):
    out = tmp_path / "r.parquet"
    # 10 s: room for the float point on a loaded machine; the sleeping one never finishes.
    result = sweep("--cells", "gru", "--backends", "test-failing,test-sleeping,float", *TINY,
                   "--timeout", "10", "--out", str(out))
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


# Issue 10: every value is checked before anything is measured (a --dry-run would show the grid).
@pytest.mark.parametrize("args,message", [
    (["--hidden", "99999999999999999999999"], "--hidden: 99999999999999999999999 is too large"),
    (["--seq-lens", str(2**63)], "--seq-lens: 9223372036854775808 is too large"),
    (["--batch", str(2**64)], "--batch: 18446744073709551616 is too large"),
    (["--input-size", str(2**63)], "--input-size: 9223372036854775808 is too large"),
    (["--seed", str(2**70)], "--seed: 1180591620717411303424 is too large"),
    (["--seed", "-1"], "--seed must be at least 0, got -1"),
    (["--repeats", str(2**63)], "--repeats: 9223372036854775808 is too large"),
    (["--threads", str(2**63)], "--threads: 9223372036854775808 is too large"),
    (["--task", "adding", "--n-eval", str(2**63)], "--n-eval: 9223372036854775808 is too large"),
    (["--task", "adding", "--train-steps", str(2**63)], "--train-steps: 9223372036854775808 is too"),
    (["--backends", "ckks", "-p", "ckks.packing=,"], "ckks.packing=,': no values given"),
    (["--backends", "ckks", "-p", "ckks.packing=batch", "-p", "ckks.packing=vector"],
     "--param ckks.packing is given twice"),
    (["--backends", "ckks", "--ckks-scale-bits", "40", "-p", "ckks.scale_bits=30"],
     "ckks.scale_bits is given twice"),
    (["--backends", "ckks", "-p", "ckks.interval=inf"], "ckks.interval must be auto or a finite"),
    (["--backends", "ckks", "-p", "ckks.margin=inf"], "ckks.margin must be a finite number"),
    (["--timeout", "inf"], "--timeout must be finite"),
])
def test_bad_values_are_refused_before_the_dry_run(tmp_path, args, message):
    result = sweep("--cells", "gru", *args, "--dry-run", "--out", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert result.stdout == ""


def test_duplicate_param_values_are_measured_once():
    result = sweep("--cells", "gru", "--backends", "ckks", "--seq-lens", "2", "--hidden", "4",
                   "-p", "ckks.packing=batch,batch,vector", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and len({line.split()[0] for line in lines}) == 2


def test_input_size_and_thread_lists_are_swept():
    from rnnbench.cli.plan import SweepOptions, plan_sweep

    plan = plan_sweep(SweepOptions(cells="gru", backends="float", seq_lens="4", hidden="8",
                                   batch="1", input_size="16,32", threads="1,2"))
    assert sorted((p.input_size, p.threads) for p in plan.points) == [
        (16, 1), (16, 2), (32, 1), (32, 2)]
    assert len({p.point_id for p in plan.points}) == 4


def test_a_preset_param_for_a_backend_not_chosen_is_dropped():
    from rnnbench.cli.plan import SweepOptions, plan_sweep

    result = sweep("--preset", "ckks-compare", "--backends", "float", "--dry-run")
    assert result.exit_code == 0, result.stderr
    plan = plan_sweep(SweepOptions(preset="ckks-compare", backends="float"))
    assert {p.backend for p in plan.points} == {"float"} and {p.params for p in plan.points} == {()}


def test_the_plan_is_pure_options_to_points_settings_output_and_executor(tmp_path):
    from rnnbench.cli.plan import ExecutorChoice, SweepOptions, plan_sweep

    plan = plan_sweep(SweepOptions(cells="gru,lstm", backends="float", seq_lens="4,8", hidden="8",
                                   repeats=7, min_time=0.5, out=tmp_path / "x", workers=3))
    assert [(p.cell, p.seq_len) for p in plan.points] == [
        ("gru", 4), ("lstm", 4), ("gru", 8), ("lstm", 8)]
    assert (plan.settings.repeats, plan.settings.min_time) == (7, 0.5)
    assert plan.out == tmp_path / "x" and plan.executor == ExecutorChoice(workers=3)
    assert list(tmp_path.iterdir()) == []  # planning writes nothing


def test_repeats_beyond_fifty_are_taken(tmp_path):
    out = tmp_path / "r.parquet"
    result = sweep("--cells", "gru", "--backends", "float", "--seq-lens", "2", "--hidden", "4",
                   "--input-size", "2", "--min-time", "0.0001", "--repeats", "55", "--warmup", "0",
                   "--out", str(out))
    assert result.exit_code == 0, result.output
    frame, _ = store.read(out)
    assert len(frame) == 55


def test_out_with_an_upper_case_suffix_is_a_file(tmp_path):
    out = tmp_path / "r.PARQUET"
    result = sweep("--cells", "gru", "--backends", "float", *TINY, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.is_file() and len(store.read(out)[0]) > 0


def test_out_below_a_regular_file_says_so(tmp_path):
    (tmp_path / "file").write_text("x")
    result = sweep("--cells", "gru", "--backends", "float", *TINY,
                   "--out", str(tmp_path / "file" / "x.parquet"))
    assert result.exit_code == 2
    assert "is a file, not a folder" in result.stderr and result.stderr.count("\n") == 1


def test_out_that_is_a_directory_named_parquet_is_refused_up_front(tmp_path):
    (tmp_path / "x.parquet").mkdir()
    result = sweep("--cells", "gru", "--backends", "float", *TINY,
                   "--out", str(tmp_path / "x.parquet"))
    assert result.exit_code == 2, result.output
    assert "is a folder" in result.stderr and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


@pytest.fixture
def full_disk(tmp_path):
    """A 40 KiB tmpfs: room for a results file of one point (~25 KB), not for the copy an append makes."""
    import os

    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill up needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_one_line_and_keeps_what_was_written(full_disk):
    out = full_disk / "r.parquet"
    result = sweep("--cells", "gru,lstm,reluadd", "--backends", "float", *TINY, "--out", str(out))
    assert result.exit_code == 1, result.output
    assert "No space left on device" in result.stderr and "--resume" in result.stderr
    assert "Traceback" not in result.output
    assert result.stderr.strip().splitlines()[-1].startswith("rnnbench: error: cannot write results")
    if out.exists():
        store.read(out)  # what was written before is intact


def test_nan_in_a_data_file_is_refused_up_front(tmp_path):
    import numpy as np

    x = np.zeros((4, 4, 4))
    x[1, 2, 3] = np.nan
    y = np.array([0, 1, 2, 3])
    data = tmp_path / "nan.npz"
    np.savez(data, x_train=x, y_train=y, x_test=np.zeros((4, 4, 4)), y_test=y)
    for command in (["train", "--task", "digits", "--seq-len", "4"],
                    ["sweep", "--task", "digits", "--backends", "float", "--dry-run"]):
        result = runner.invoke(app, [*command, "--data", str(data), "--models", str(tmp_path / "m"),
                                     "--out", str(tmp_path / "r")])
        assert result.exit_code == 2, (command, result.output)
        assert "x_train holds NaN or infinite values" in result.stderr
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_early_ctrl_c_is_one_line_and_exit_130():
    """Ctrl-C while the libraries are still loading: no traceback."""
    import signal
    import time

    code = "from rnnbench.cli import main; main()"
    process = subprocess.Popen([sys.executable, "-c", code, "sweep", "--dry-run"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=default_sigint)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr == "rnnbench: interrupted\n"


def test_compact_folds_a_killed_sweeps_fragments(tmp_path):
    """A sweep killed with SIGKILL leaves fragments: readable at once, folded by ``compact``."""
    out = tmp_path / "r.parquet"
    code = "from rnnbench.cli import main; main()"
    process = subprocess.Popen([sys.executable, "-c", code, "sweep", "--cells", "gru,lstm,reluadd",
                                "--backends", "float", *TINY, "--hidden", "4,8,12", "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parts = store.parts_dir(out)
    while process.poll() is None and not any(parts.glob("*/*.parquet")):
        time.sleep(0.05)
    process.kill()
    process.communicate()
    measured = store.completed_point_ids(out)
    assert measured and not out.exists()
    result = runner.invoke(app, ["compact", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert out.exists() and not parts.exists()
    assert store.completed_point_ids(out) == measured
    assert runner.invoke(app, ["compact", str(tmp_path / "nowhere")]).exit_code == 2
