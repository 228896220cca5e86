"""Ctrl-C stops a sweep cleanly: what was measured is kept, and --resume finishes the rest."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from rnnbench.results import store

from .conftest import default_sigint

SWEEP = ["sweep", "--cells", "gru,lstm,reluadd", "--backends", "float,torch", "--seq-lens", "4",
         "--hidden", "4,8", "--input-size", "2", "--min-time", "0.15", "--repeats", "2"]


def _rnnbench(*args):
    code = "from rnnbench.cli import main; main()"
    return subprocess.Popen([sys.executable, "-c", code, *args], preexec_fn=default_sigint,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_ctrl_c_keeps_measured_points_and_resume_completes(tmp_path):
    out = tmp_path / "r.parquet"
    process = _rnnbench(*SWEEP, "--out", str(out))
    deadline = time.monotonic() + 120
    # Wait for a finished point, not just the run's folder: a Ctrl-C while the first fragment
    # is being written loses only that point (re-measured by --resume), which proves nothing here.
    while time.monotonic() < deadline and not (store.exists(out) and store.completed_point_ids(out)):
        time.sleep(0.1)
    assert store.exists(out), process.communicate()[1]
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    partial = store.completed_point_ids(out)
    assert 1 <= len(partial) < 12

    resumed = _rnnbench(*SWEEP, "--out", str(out), "--resume")
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    frame, metadata = store.read(out)
    assert len(store.completed_point_ids(out)) == 12
    assert len(metadata["runs"]) == 2
    # Points finished before the interrupt were not measured again.
    first_run = metadata["runs"][0]["run_id"]
    assert set(frame.loc[frame["run_id"] == first_run, "point_id"]) >= partial
    assert frame.loc[frame["point_id"].isin(partial), "run_id"].eq(first_run).all()


def test_sigterm_stops_like_ctrl_c_with_the_resume_hint(tmp_path):
    out = tmp_path / "r.parquet"
    process = _rnnbench(*SWEEP, "--out", str(out))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (store.exists(out) and store.completed_point_ids(out)):
        time.sleep(0.1)
    assert store.exists(out), process.communicate()[1]
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "terminated: points measured so far are kept" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    assert 1 <= len(store.completed_point_ids(out)) < 12


def test_ctrl_c_while_the_fork_server_starts_is_one_message(tmp_path):
    """A terminal's Ctrl-C reaches the whole process group, the fork server too."""
    import os

    process = subprocess.Popen(
        [sys.executable, "-c", "from rnnbench.cli import main; main()", *SWEEP[:5], "--seq-lens",
         "4", "--hidden", "4", "--input-size", "2", "--out", str(tmp_path / "r.parquet")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=default_sigint)
    started = process.stderr.readline()  # "run ...": the fork server starts next
    time.sleep(0.3)  # the server is importing numpy and torch now
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, started + stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
