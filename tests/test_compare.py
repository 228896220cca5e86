"""`compare` on synthetic samples with known shifts, and `merge` of results files."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from rnnbench import grid
from rnnbench.cli import app
from rnnbench.results import compare, store

runner = CliRunner()
POINTS = grid.expand(["gru", "lstm", "reluadd"], ["float"], [10], [16], [1], input_size=4)


def _rows(samples_by_point, status_by_point=None, run_id=None):
    """Results rows of one run: one timed sample per value (plus a warm-up that must be ignored)."""
    run_id = run_id or uuid.uuid4().hex[:12]
    start = dt.datetime.now(dt.UTC)  # later runs start later, as real ones do
    rows = []
    for point, samples in samples_by_point.items():
        status = (status_by_point or {}).get(point, "ok")
        base = {**point.columns(), "kind": "timing", "run_id": run_id, "status": status,
                "started_at": start, "cpu_model": "AMD EPYC (Zen 4)"}
        if status != "ok":
            rows.append(base)
            continue
        rows.append({**base, "repeat_idx": 0, "is_warmup": True, "time_per_step_s": 1.0})
        rows += [{**base, "repeat_idx": i + 1, "is_warmup": False, "time_per_step_s": float(s)}
                 for i, s in enumerate(samples)]
    return rows


def _frame(rows):
    return store.rows_to_table(rows).to_pandas()


def _write(path, rows):
    store.append(path, rows, {"run_id": rows[0]["run_id"], "args": {}})
    return path


def _noisy(rng, median_s, n=20):
    """Timing-like samples: log-normal noise of a few percent around ``median_s``."""
    return median_s * rng.lognormal(0.0, 0.03, n)


@pytest.fixture
def shifted():
    """Baseline and candidate: gru 20% slower, lstm 20% faster, reluadd the same distribution."""
    rng = np.random.default_rng(7)
    gru, lstm, reluadd = POINTS
    base = {gru: _noisy(rng, 1e-6), lstm: _noisy(rng, 2e-6), reluadd: _noisy(rng, 1.5e-6)}
    cand = {gru: _noisy(rng, 1.2e-6), lstm: _noisy(rng, 1.6e-6), reluadd: _noisy(rng, 1.5e-6)}
    return _rows(base), _rows(cand)


def test_a_known_shift_is_detected_and_an_identical_distribution_is_not(shifted):
    base, cand = shifted
    table = compare.compare(_frame(base), _frame(cand))
    marks = dict(zip(table["cell"], table["mark"], strict=True))
    assert marks == {"gru": "worse", "lstm": "better", "reluadd": "unchanged"}
    ratios = dict(zip(table["cell"], table["ratio"], strict=True))
    assert ratios["gru"] == pytest.approx(1.2, rel=0.05)
    assert ratios["lstm"] == pytest.approx(0.8, rel=0.05)
    row = table.set_index("cell").loc["gru"]
    assert row.ratio_low < row.ratio < row.ratio_high and row.p_value < 1e-6
    summary = compare.summarize(table, alpha=0.01)
    assert summary["regressed"] and summary["marks"] == {"worse": 1, "better": 1, "unchanged": 1}
    assert summary["geomean_ratio"] == pytest.approx((1.2 * 0.8 * 1.0) ** (1 / 3), rel=0.05)


def test_a_run_compared_with_itself_is_unchanged_everywhere(shifted):
    base, _ = shifted
    table = compare.compare(_frame(base), _frame(base))
    assert set(table["mark"]) == {"unchanged"}
    assert np.allclose(table["ratio"], 1.0) and not compare.summarize(table, 0.01)["regressed"]


def test_significant_shifts_below_the_minimum_effect_are_unchanged():
    rng = np.random.default_rng(3)
    [point] = POINTS[:1]
    base = _rows({point: 1e-6 * rng.lognormal(0, 0.002, 30)})
    cand = _rows({point: 1.03e-6 * rng.lognormal(0, 0.002, 30)})  # 3% slower, very clearly
    [line] = compare.compare(_frame(base), _frame(cand), min_effect=0.05).itertuples()
    assert line.p_value < 1e-6 and line.mark == "unchanged"
    [line] = compare.compare(_frame(base), _frame(cand), min_effect=0.01).itertuples()
    assert line.mark == "worse"


@pytest.mark.parametrize("baseline,candidate,ratio,p,expected", [
    ("ok", "ok", 1.5, 0.001, "worse"),
    ("ok", "ok", 0.5, 0.001, "better"),
    ("ok", "ok", 1.5, 0.2, "unchanged"),  # large but not significant
    ("ok", "ok", 1.04, 0.001, "unchanged"),  # significant but below the minimum effect
    ("ok", "ok", 1 / 1.04, 0.001, "unchanged"),
    ("ok", "error", float("nan"), float("nan"), "failed"),
    ("ok", "timeout", float("nan"), float("nan"), "failed"),
    (None, "ok", float("nan"), float("nan"), "new"),
    ("error", "ok", float("nan"), float("nan"), "new"),
    ("ok", None, float("nan"), float("nan"), "missing"),
    ("skipped", "skipped", float("nan"), float("nan"), "skipped"),
])
def test_mark(baseline, candidate, ratio, p, expected):
    assert compare.mark(baseline, candidate, ratio, p, alpha=0.01, min_effect=0.05) == expected


def test_failed_new_and_missing_points_are_reported_and_failures_gate():
    gru, lstm, reluadd = POINTS
    base = _rows({gru: [1e-6] * 5, lstm: [1e-6] * 5})
    cand = _rows({gru: [], reluadd: [1e-6] * 5}, status_by_point={gru: "error"})
    table = compare.compare(_frame(base), _frame(cand))
    assert dict(zip(table["cell"], table["mark"], strict=True)) == {
        "gru": "failed", "lstm": "missing", "reluadd": "new"}
    assert compare.summarize(table, 0.01)["regressed"]


def test_too_few_samples_are_flagged_as_underpowered():
    assert compare.min_p_value(4, 4) == pytest.approx(2 / 70)
    assert compare.min_p_value(5, 5) < 0.01
    [point] = POINTS[:1]
    table = compare.compare(_frame(_rows({point: [1.0, 1.1, 1.2]})),
                            _frame(_rows({point: [2.0, 2.1, 2.2]})))
    assert table["mark"].tolist() == ["unchanged"]  # 3 against 3 can never reach p < 0.01
    assert compare.summarize(table, 0.01)["underpowered"] == 1


def test_compare_command_gates_on_regressions(tmp_path, shifted):
    base, cand = shifted
    a, b = _write(tmp_path / "a.parquet", base), _write(tmp_path / "b.parquet", cand)
    result = runner.invoke(app, ["compare", str(a), str(b)])
    assert result.exit_code == 1, result.output
    assert "| gru | float |" in result.stdout and "worse" in result.stdout
    assert "geometric mean ratio" in result.stdout
    assert runner.invoke(app, ["compare", str(a), str(a)]).exit_code == 0
    result = runner.invoke(app, ["compare", str(a), str(b), "--format", "json", "--min-effect", "0.5"])
    assert result.exit_code == 0  # a 20% shift is below a 50% minimum effect
    report = json.loads(result.stdout)
    assert {p["mark"] for p in report["points"]} == {"unchanged"}
    assert report["summary"]["compared"] == 3


@pytest.mark.parametrize("args,message", [
    (["--alpha", "1.5"], "--alpha must be between 0 and 1"),
    (["--min-effect", "-0.1"], "--min-effect must be zero or positive"),
    (["--format", "xml"], "--format must be md, csv or json"),
])
def test_compare_bad_options_are_one_line(tmp_path, shifted, args, message):
    a = _write(tmp_path / "a.parquet", shifted[0])
    result = runner.invoke(app, ["compare", str(a), str(a), *args])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and message in result.stderr


def _other_schema(path, rows):
    """A results file written by a (hypothetical) newer rnnbench, one schema version ahead."""
    table = store.rows_to_table(rows)
    meta = {b"rnnbench": json.dumps({"schema_version": store.SCHEMA_VERSION + 1,
                                     "runs": [{"run_id": "future"}]})}
    pq.write_table(table.replace_schema_metadata(meta), path)
    return path


def test_merge_keeps_every_run_and_row(tmp_path, shifted):
    a, b = _write(tmp_path / "a.parquet", shifted[0]), _write(tmp_path / "b.parquet", shifted[1])
    out = tmp_path / "all.parquet"
    result = runner.invoke(app, ["merge", str(a), str(b), "-o", str(out)])
    assert result.exit_code == 0, result.output
    frame, metadata = store.read(out)
    assert len(frame) == len(shifted[0]) + len(shifted[1])
    assert [r["run_id"] for r in metadata["runs"]] == [shifted[0][0]["run_id"], shifted[1][0]["run_id"]]
    # Merged files compare like their parts: the latest run of each point wins.
    assert set(compare.compare(store.read(a)[0], frame)["mark"]) == {"worse", "better", "unchanged"}


def test_merge_refuses_other_schema_versions_and_duplicate_runs(tmp_path, shifted):
    a = _write(tmp_path / "a.parquet", shifted[0])
    future = _other_schema(tmp_path / "future.parquet", shifted[1])
    out = tmp_path / "all.parquet"
    result = runner.invoke(app, ["merge", str(a), str(future), "-o", str(out)])
    assert result.exit_code == 2 and f"schema version {store.SCHEMA_VERSION + 1}" in result.stderr
    assert result.stderr.count("\n") == 1 and not out.exists()
    copy = tmp_path / "copy.parquet"
    copy.write_bytes(a.read_bytes())
    result = runner.invoke(app, ["merge", str(a), str(copy), "-o", str(out)])
    assert result.exit_code == 2 and "would count its rows twice" in result.stderr
    assert not out.exists()


def test_merge_into_an_input_adds_to_it_but_never_replaces_other_files(tmp_path, shifted):
    a, b = _write(tmp_path / "a.parquet", shifted[0]), _write(tmp_path / "b.parquet", shifted[1])
    other = _write(tmp_path / "other.parquet", _rows({POINTS[0]: [1e-6] * 3}))
    before = other.read_bytes()
    result = runner.invoke(app, ["merge", str(a), str(b), "-o", str(other)])
    assert result.exit_code == 2 and "use --force" in result.stderr
    assert other.read_bytes() == before
    assert runner.invoke(app, ["merge", str(a), str(b), "-o", str(a)]).exit_code == 0
    assert len(store.read(a)[1]["runs"]) == 2
    assert runner.invoke(app, ["merge", str(b), "-o", str(other), "--force"]).exit_code == 0
    assert len(store.read(other)[0]) == len(shifted[1])


def _accuracy_file(path):
    point = grid.Point.make(cell="gru", backend="float", seq_len=8, hidden_size=8, input_size=8,
                            batch_size=40, task="digits")
    run_id = uuid.uuid4().hex[:12]
    rows = [{**point.columns(), "kind": "accuracy", "run_id": run_id, "status": "ok",
             "started_at": dt.datetime.now(dt.UTC), "metric": "accuracy", "metric_value": 0.9}]
    return _write(path, rows)


def test_compare_without_timing_rows_has_every_column():
    """The pure comparison of files with no timing rows is an empty table, not a KeyError."""
    empty = store.SCHEMA.empty_table().to_pandas()
    table = compare.compare(empty, empty)
    assert len(table) == 0 and {"ratio", "p_value", "mark"} <= set(table.columns)
    assert compare.summarize(table, 0.01)["compared"] == 0


@pytest.mark.parametrize("make", ["accuracy", "empty"])
def test_compare_exits_2_when_there_are_no_timing_rows(tmp_path, make):
    if make == "accuracy":
        path = _accuracy_file(tmp_path / "a.parquet")
    else:
        path = tmp_path / "a.parquet"
        store.write(path, store.SCHEMA.empty_table(), {"schema_version": store.SCHEMA_VERSION, "runs": []})
    result = runner.invoke(app, ["compare", str(path), str(path)])
    assert result.exit_code == 2, result.output
    assert "no timing rows" in result.stderr and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_compare_exits_2_when_no_point_was_compared(tmp_path):
    gru, lstm, _ = POINTS
    rng = np.random.default_rng(1)
    a = _write(tmp_path / "a.parquet", _rows({gru: _noisy(rng, 1e-6)}))
    b = _write(tmp_path / "b.parquet", _rows({lstm: _noisy(rng, 1e-6)}))
    result = runner.invoke(app, ["compare", str(a), str(b)])
    assert result.exit_code == 2, result.output
    assert "nothing compared" in result.stderr


def test_compare_reports_a_missing_file_as_missing(tmp_path, shifted):
    a = _write(tmp_path / "a.parquet", shifted[0])
    result = runner.invoke(app, ["compare", str(a), str(tmp_path / "nope.parquet")])
    assert result.exit_code == 2
    assert "nope.parquet: no such file" in result.stderr and "Parquet" not in result.stderr
