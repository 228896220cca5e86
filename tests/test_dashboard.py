"""The dashboard: chart functions on stored rows, the data layer, the Streamlit page, `rnnbench report`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from dashboard import data
from dashboard.charts import CHARTS, failures, speedups
from dashboard.charts.accuracy import higher_is_better, pareto_front
from dashboard.charts.common import point_table, series_labels
from dashboard.charts.integer import bit_width
from rnnbench.cli import app
from rnnbench.results import stats, store

from .fixtures_results import synthetic_rows, write_corrupt, write_other_schema, write_results

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
CHART_KEYS = [c.key for c in CHARTS]


def as_stored(rows: list[dict]) -> pd.DataFrame:
    """Rows as the dashboard sees them after reading a results file."""
    return store.rows_to_table(rows).to_pandas()


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return as_stored(synthetic_rows())


def is_empty_figure(figure: go.Figure) -> bool:
    return not figure.data and len(figure.layout.annotations) == 1


# Chart functions ---------------------------------------------------------------------------------

@pytest.mark.parametrize("key", CHART_KEYS)
def test_every_chart_draws_the_synthetic_results(rows, key):
    chart = next(c for c in CHARTS if c.key == key)
    figure = chart.build(rows)
    assert not is_empty_figure(figure)
    assert any(len(trace.cells.values[0] if isinstance(trace, go.Table) else trace.x)
               for trace in figure.data)
    json.loads(figure.to_json())  # serializable, as the page and the report need


@pytest.mark.parametrize("key", CHART_KEYS)
def test_every_chart_explains_an_empty_selection(key):
    chart = next(c for c in CHARTS if c.key == key)
    figure = chart.build(as_stored([]))
    assert is_empty_figure(figure)
    assert figure.layout.annotations[0].text


def test_charts_of_missing_kinds_say_what_is_missing(rows):
    timing_only = rows[rows["backend"].isin(["float", "torch"]) & (rows["kind"] == "timing")
                       & (rows["status"] == "ok")]  # what a sweep of the float backends writes
    missing = {c.key: c.build(timing_only) for c in CHARTS}
    for key in ("ckks", "integer_error", "accuracy_vs_cost", "training_curves"):
        assert is_empty_figure(missing[key]), key
    assert "CKKS" in missing["ckks"].layout.annotations[0].text
    assert "Every point" in missing["failures"].layout.annotations[0].text
    for key in ("time_vs_seq_len", "time_vs_hidden", "speedup", "cost_model", "samples"):
        assert not is_empty_figure(missing[key]), key


def test_point_statistics_come_from_the_latest_run_without_warmup(rows):
    rerun = [dict(r, run_id="rerun", time_per_step_s=r["time_per_step_s"] * 10,
                  started_at=r["started_at"] + pd.Timedelta(days=1))
             for r in synthetic_rows() if r["backend"] == "float" and r["kind"] == "timing"]
    both = pd.concat([rows, as_stored(rerun)], ignore_index=True)
    points = point_table(both).set_index("point_id")
    some = next(r for r in rerun if not r["is_warmup"])
    samples = [r["time_per_step_s"] for r in rerun
               if r["point_id"] == some["point_id"] and not r["is_warmup"]]
    assert points.loc[some["point_id"], "run_id"] == "rerun"
    assert points.loc[some["point_id"], "n"] == len(samples)
    q1, median, q3 = stats.quartiles(samples)
    assert points.loc[some["point_id"], ["q1", "median", "q3"]].tolist() == pytest.approx([q1, median, q3])


def test_speedup_is_the_ratio_of_sample_medians(rows):
    table = speedups(rows)
    line = table[(table["backend"] == "float") & (table["seq_len"] == 100) & (table["hidden_size"] == 64)
                 & (table["baseline"] == "lstm")].iloc[0]
    ok = rows[(rows["kind"] == "timing") & (rows["status"] == "ok") & ~rows["is_warmup"].astype(bool)
              & (rows["backend"] == "float")
              & (rows["seq_len"] == 100) & (rows["hidden_size"] == 64)]
    expected = stats.ratio_with_spread(ok.loc[ok["cell"] == "lstm", "time_per_step_s"],
                                       ok.loc[ok["cell"] == "reluadd", "time_per_step_s"])
    assert (line["speedup"], line["low"], line["high"]) == pytest.approx(expected)
    assert set(table["baseline"]) == {"gru", "lstm"}
    assert (table["speedup"] > 1).all()  # the synthetic reluadd is ~2x faster everywhere


def test_speedup_chart_draws_parity_and_the_papers_claims(rows):
    figure = next(c for c in CHARTS if c.key == "speedup").build(rows)
    levels = {t.name: set(t.y) for t in figure.data if t.name and ("claim" in t.name or "1x" in t.name)}
    assert levels == {"1x: no speedup": {1.0}, "paper's claim: 2x (float)": {2.0},
                      "paper's claim: 1.5x (encrypted)": {1.5}}
    panels = {a.text for a in figure.layout.annotations}
    assert {"ckks", "float", "int8", "int16", "torch"} <= panels  # onnxruntime skipped reluadd
    assert {figure.layout[n].type for n in figure.layout if n.startswith("yaxis")} == {"log"}


def test_time_chart_toggles_between_per_step_and_per_sequence(rows):
    figure = next(c for c in CHARTS if c.key == "time_vs_seq_len").build(rows)
    per_step, per_sequence = (b.args[0]["y"] for b in figure.layout.updatemenus[0].buttons)
    for trace, step_y, sequence_y in zip(figure.data, per_step, per_sequence, strict=True):
        assert np.allclose(np.asarray(sequence_y), np.asarray(step_y) * np.asarray(trace.x))


def test_pareto_front_keeps_only_undominated_points():
    frame = pd.DataFrame({"cost": [1, 2, 3, 4, 5], "value": [0.5, 0.4, 0.8, 0.7, 0.9]})
    assert pareto_front(frame, "cost", "value", higher=True)["cost"].tolist() == [1, 3, 5]
    assert pareto_front(frame, "cost", "value", higher=False)["cost"].tolist() == [1, 2]
    assert higher_is_better("accuracy") and not higher_is_better("mse")


def test_bit_width_from_parameters_or_name():
    assert bit_width("int8", "{}") == 8
    assert bit_width("int", '{"bits": 12}') == 12
    assert np.isnan(bit_width("float", "{}"))


def test_failed_timed_out_and_skipped_points_are_listed(rows):
    table = failures(rows)
    assert sorted(table["status"]) == ["error", "skipped", "timeout"]
    assert "accumulator overflow" in table["message"].tolist()


def test_series_labels_name_only_what_varies(rows):
    float_points = point_table(rows[rows["backend"] == "float"])
    labels = series_labels(float_points, exclude=["seq_len"])
    assert set(labels) == {"H=16", "H=64", "H=256"}


# Data layer --------------------------------------------------------------------------------------

def test_filters_keep_rows_without_the_field_and_round_trip_through_the_url(rows):
    selection = data.parse_selection({"task": ["digits"], "hidden": ["64", "999"], "cell": []}, rows)
    assert selection["task"] == ["digits"] and selection["hidden_size"] == [64]
    selected = data.apply_filters(rows, selection)
    assert set(selected["task"].dropna()) == {"digits"}
    assert selected["task"].isna().any()  # timing rows have no task and stay
    assert set(selected["hidden_size"]) == {64}
    assert data.to_query(selection) == {"hidden": ["64"], "task": ["digits"]}


def test_selection_exports_as_a_loadable_results_file(rows, tmp_path):
    selected = data.apply_filters(rows, {"cell": ["gru"]})
    path = tmp_path / "export.parquet"
    path.write_bytes(data.results_file_bytes(selected, [{"run_id": "synthetic01", "source_file": "x"}]))
    loaded, runs, problems = store.read_many([path])
    assert problems == [] and len(loaded) == len(selected) and set(loaded["cell"]) == {"gru"}
    assert [r["run_id"] for r in runs] == ["synthetic01"]


# The Streamlit page ------------------------------------------------------------------------------

def run_app(monkeypatch, *paths: Path, query: dict | None = None) -> AppTest:
    monkeypatch.setenv(data.RESULTS_ENV, ":".join(map(str, paths)))
    page = AppTest.from_file(APP, default_timeout=180)
    for key, value in (query or {}).items():
        page.query_params[key] = value
    return page.run()


def chart_count(page: AppTest) -> int:
    return len(page.get("plotly_chart"))


def test_page_loads_files_and_shows_runs_and_every_chart(monkeypatch, tmp_path):
    write_results(tmp_path / "a.parquet", run_id="runA")
    write_results(tmp_path / "b.parquet", run_id="runB", seed=1)
    page = run_app(monkeypatch, tmp_path)
    assert not page.exception and not page.error
    runs = page.dataframe[0].value
    assert sorted(runs["run"]) == ["runA", "runB"]
    assert set(runs["machine"]) == {"AMD EPYC (Zen 4) @ bench-host"}
    assert set(runs["commit"]) == {"0123456789"} and runs["date"].str.startswith("2026-01-05").all()
    assert chart_count(page) == len(CHARTS)
    assert [h.value for h in page.subheader] == [c.title for c in CHARTS]
    assert [m.label for m in page.multiselect] == [f.label for f in data.FILTERS]


def test_page_filters_follow_and_update_the_url(monkeypatch, tmp_path):
    write_results(tmp_path / "a.parquet")
    page = run_app(monkeypatch, tmp_path, query={"backend": "float"})
    assert page.multiselect(key="filter_backend").value == ["float"]
    total = len(as_stored(synthetic_rows()))
    float_rows = sum(r["backend"] == "float" for r in synthetic_rows())
    assert any(f"{float_rows} of {total} rows selected" in c.value for c in page.caption)

    page.multiselect(key="filter_cell").select("gru").run()
    url = {k: [v] if isinstance(v, str) else list(v) for k, v in page.query_params.items()}
    assert url == {"cell": ["gru"], "backend": ["float"]}
    assert chart_count(page) == len(CHARTS) and not page.exception

    page.multiselect(key="filter_hidden").select(16).run()  # float has H=16, but combined with ...
    page.multiselect(key="filter_backend").unselect("float").select("ckks").run()
    page.multiselect(key="filter_hidden").unselect(16).select(256).run()  # ... ckks only ran H=16
    assert "No rows match" in page.warning[0].value
    assert chart_count(page) == 0 and not page.exception


def test_page_reports_bad_files_and_loads_the_rest(monkeypatch, tmp_path):
    write_results(tmp_path / "good.parquet")
    write_corrupt(tmp_path / "corrupt.parquet")
    write_other_schema(tmp_path / "other.parquet")
    page = run_app(monkeypatch, tmp_path, tmp_path / "missing")
    messages = [e.value for e in page.error]
    assert any("corrupt.parquet" in m and "not a readable Parquet file" in m for m in messages)
    assert any("other.parquet" in m and "not an rnnbench results file" in m for m in messages)
    assert any("missing" in m and "no such file" in m for m in messages)
    assert chart_count(page) == len(CHARTS) and not page.exception


def test_page_without_results_shows_a_hint(monkeypatch, tmp_path):
    page = run_app(monkeypatch, tmp_path)
    assert "No results loaded" in page.info[0].value
    assert "no results files" in page.error[0].value
    assert chart_count(page) == 0 and not page.exception


# rnnbench report and rnnbench dashboard (input checks) ---------------------------------------------

def test_report_is_one_self_contained_html_file_with_every_chart(tmp_path):
    write_results(tmp_path / "results" / "a.parquet")
    write_corrupt(tmp_path / "results" / "bad.parquet")
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", str(tmp_path / "results"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    document = out.read_text()
    assert document.count("plotly.js v") == 1  # the library inlined once, before the first chart
    for chart in CHARTS:
        assert f'id="chart-{chart.key}"' in document and chart.title in document
    assert not re.search(r"<script[^>]*\bsrc=", document)  # nothing to fetch from the network
    assert "bad.parquet" in document  # the unreadable file is named in the report


@pytest.mark.parametrize("args, message", [
    (["report", "nowhere"], "nowhere: no such file or directory"),
    (["report", "{bad}"], "no readable results"),
    (["dashboard", "nowhere"], "no such file or directory: nowhere"),
    (["dashboard", "{good}", "--port", "70000"], "--port must be between 1 and 65535"),
])
def test_bad_input_is_one_line_and_a_nonzero_exit(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    good, bad = tmp_path / "good", tmp_path / "bad"
    bad.mkdir()
    write_corrupt(bad / "x.parquet")
    write_results(good / "a.parquet")
    args = [a.format(good=good, bad=bad) for a in args]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "report.html").exists()


def test_legend_names_only_the_backend_parameters_that_vary():
    import pandas as pd

    from dashboard.charts.common import series_labels

    defaults = {"poly_degree": "auto", "relu_degree": 6}
    frame = pd.DataFrame({
        "backend": ["ckks", "ckks", "float"],
        "backend_params": [json.dumps({**defaults, "packing": "batch"}),
                           json.dumps({**defaults, "packing": "vector"}), "{}"],
    })
    assert list(series_labels(frame)) == ["packing=batch", "packing=vector", ""]
