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
from dashboard.charts import CHARTS, TABS, explain_empty, failures, speedups
from dashboard.charts.accuracy import accuracy_points, accuracy_with_cost, higher_is_better, pareto_front
from dashboard.charts.common import log_ticks, point_table, series_labels, tick_text
from dashboard.charts.encrypted import accuracy_vs_depth, encrypted_accuracy_points
from dashboard.charts.integer import bit_width
from rnnbench.cli import app
from rnnbench.results import stats, store, summary

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
    for key in ("encrypted", "integer_error", "accuracy_by_backend", "accuracy_vs_cost", "training_curves"):
        assert is_empty_figure(missing[key]), key
    assert "CKKS or TFHE" in missing["encrypted"].layout.annotations[0].text
    assert "Every point" in missing["failures"].layout.annotations[0].text
    for key in ("time_vs_seq_len", "time_vs_hidden", "speedup", "cost_model", "samples"):
        assert not is_empty_figure(missing[key]), key


def test_cost_model_compares_one_thread_count_and_each_backend_setting_on_its_own(rows):
    """The Xeon reference folder holds one- and two-thread points of one size, and TFHE's two
    forms of one point: both made the measured bars' cell index ambiguous (a raised error)."""
    two_threads = rows[rows["backend"] == "float"].assign(
        threads=2, point_id=lambda f: f["point_id"] + "-2t",
        time_per_step_s=lambda f: f["time_per_step_s"] / 2)
    forms = rows[rows["backend"] == "float"].assign(
        backend="tfhe", backend_params='{"form": "packed"}', point_id=lambda f: f["point_id"] + "-p")
    literal = forms.assign(backend_params='{"form": "literal"}', point_id=lambda f: f["point_id"] + "-l")
    figure = next(c for c in CHARTS if c.key == "cost_model").build(
        pd.concat([rows, two_threads, forms, literal]))
    names = [t.name for t in figure.data if t.name.startswith("measured")]
    assert "measured: tfhe form=literal" in names and "measured: tfhe form=packed" in names
    alone = next(c for c in CHARTS if c.key == "cost_model").build(rows)
    float_bars = [t.y for f in (figure, alone) for t in f.data if t.name == "measured: float"]
    assert list(float_bars[0]) == list(float_bars[1])  # the one-thread points, not the halved ones


def test_an_empty_chart_says_whether_the_filters_hid_its_data_or_it_never_ran(rows):
    encrypted = next(c for c in CHARTS if c.key == "encrypted")
    float_only = data.apply_filters(rows, {"backend": ["float"]})
    hidden = explain_empty(encrypted, encrypted.build(float_only), loaded=rows)
    assert hidden.layout.annotations[0].text.startswith("Filtered out")
    never = explain_empty(encrypted, encrypted.build(float_only), loaded=float_only)
    assert never.layout.annotations[0].text.startswith("Never run")
    drawn = encrypted.build(rows)
    assert explain_empty(encrypted, drawn, loaded=rows) is drawn


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
    first = [r["time_per_step_s"] for r in synthetic_rows()
             if r["point_id"] == some["point_id"] and not r["is_warmup"]]
    assert points.loc[some["point_id"], "runs"] == 2  # the hover's "2 runs" and their spread
    assert points.loc[some["point_id"], ["run_low", "run_high"]].tolist() == pytest.approx(
        sorted([stats.median(first), stats.median(samples)]))


def test_the_encrypted_chart_draws_tfhe_columns_where_they_exist(rows):
    tfhe = rows[(rows["backend"] == "float") & (rows["hidden_size"] == 16) & (rows["seq_len"] == 10)]
    tfhe = tfhe.assign(backend="tfhe", point_id=tfhe["point_id"] + "-tfhe", tfhe_keygen_s=3.0,
                       tfhe_encrypt_s=0.2, tfhe_eval_s=7.0, tfhe_decrypt_s=0.1, tfhe_pbs_per_step=12.0)
    figure = next(c for c in CHARTS if c.key == "encrypted").build(pd.concat([rows, tfhe]))
    phases = {t.name for t in figure.data if t.type == "bar" and t.name}
    assert {"key generation", "encrypt", "evaluate", "decrypt"} <= phases
    assert any("TFHE PBS" in a.text for a in figure.layout.annotations)
    labels = {x for t in figure.data if t.type == "bar" for x in t.x}
    assert any("tfhe" in x for x in labels) and any("ckks" in x for x in labels)


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


def reference_levels(figure: go.Figure) -> set[float]:
    return {y for t in figure.data if t.name and ("claim" in t.name or "1x" in t.name) for y in t.y}


def test_each_paper_claim_is_drawn_only_on_the_backends_it_is_about(rows):
    chart = next(c for c in CHARTS if c.key == "speedup")
    assert reference_levels(chart.build(rows[rows["backend"] == "ckks"])) == {1.0, 1.5}
    tfhe = rows[rows["backend"] == "ckks"].assign(backend="tfhe")
    assert reference_levels(chart.build(tfhe)) == {1.0, 3.0}  # the 2026 version's TFHE claim
    for backend in ("float", "int8", "torch"):
        assert reference_levels(chart.build(rows[rows["backend"] == backend])) == {1.0, 2.0}, backend
    figure = chart.build(rows)
    panels = {a.text for a in figure.layout.annotations}
    assert {"ckks", "float", "int8", "int16", "torch"} <= panels  # onnxruntime skipped reluadd
    assert {figure.layout[n].type for n in figure.layout if n.startswith("yaxis")} == {"log"}


def test_time_chart_toggles_between_per_step_and_per_sequence(rows):
    figure = next(c for c in CHARTS if c.key == "time_vs_seq_len").build(rows)
    per_step, per_sequence = (b.args[0]["y"] for b in figure.layout.updatemenus[0].buttons)
    for trace, step_y, sequence_y in zip(figure.data, per_step, per_sequence, strict=True):
        if trace.x[0] is not None:  # legend-only entries have no data
            assert np.allclose(np.asarray(sequence_y), np.asarray(step_y) * np.asarray(trace.x))


def test_log_axes_label_every_tick_in_full(rows):
    assert log_ticks([0.8, 1.8]) == [0.7, 1, 1.5, 2]
    assert [tick_text(v) for v in log_ticks([3, 900])] == [
        "2", "5", "10", "20", "50", "100", "200", "500", "1,000"]
    assert [tick_text(v) for v in log_ticks([3, 9000])] == [
        "3", "10", "30", "100", "300", "1,000", "3,000", "10,000"]
    assert tick_text(2e-4, scientific=True) == "2e-4"
    figure = next(c for c in CHARTS if c.key == "integer_error").build(rows)
    assert all(t.endswith(("e-1", "e-2", "e-3", "e-4", "e-5", "e-6")) for t in figure.layout.yaxis.ticktext)


def test_a_panel_with_one_x_value_draws_points_with_error_bars(rows):
    figure = next(c for c in CHARTS if c.key == "time_vs_seq_len").build(rows)
    ckks = [t for t in figure.data if t.customdata is not None and "ckks" not in (t.name or "")
            and len(t.x) == 1]
    assert ckks and all(t.mode == "markers" and t.error_y.array is not None for t in ckks)
    lines = [t for t in figure.data if t.customdata is not None and len(t.x) > 1]
    assert lines and all(t.mode == "lines+markers" for t in lines)


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


INTEL = {"cpu_model": "Intel Xeon", "hostname": "intel-host", "machine_id": "intel-machine"}
AMD_LABEL = "AMD EPYC (Zen 4) @ bench-host (syntheti)"
INTEL_LABEL = "Intel Xeon @ intel-host (intel-ma)"
FIRST_TAB = [c for c in CHARTS if c.tab == TABS[0]]


def open_tab(page: AppTest, tab: str) -> AppTest:
    page.session_state["tab"] = tab
    return page.run()


def two_machines(tmp_path: Path) -> Path:
    """The same points measured on an AMD machine and, a day later, on an Intel one."""
    write_results(tmp_path / "amd.parquet", run_id="runA")
    write_results(tmp_path / "intel.parquet", run_id="runI", seed=1, machine=INTEL, days_later=1)
    return tmp_path


def test_page_opens_on_the_summary_of_the_newest_machine_and_draws_only_the_open_tab(monkeypatch, tmp_path):
    page = run_app(monkeypatch, two_machines(tmp_path))
    assert not page.exception and not page.error and not page.warning
    assert page.subheader[0].value == "Summary"
    assert page.multiselect(key="filter_machine").value == ["intel-machine"]
    assert "machine" not in page.dataframe[0].value  # one machine: named once, in the caption
    assert any(c.value.endswith(f"machine: {INTEL_LABEL}") for c in page.caption)
    assert [t.label for t in page.tabs] == [*TABS, "Compare", "Runs and downloads"]
    assert [h.value for h in page.subheader] == ["Summary", *(c.title for c in FIRST_TAB)]
    assert chart_count(page) == len(FIRST_TAB)
    assert [m.label for m in page.multiselect] == [f.label for f in data.FILTERS]
    run_options = page.multiselect(key="filter_run").options
    assert "2026-01-06 12:00 UTC · Intel Xeon @ intel-host (intel-ma) · intel.parquet" in run_options

    for tab in TABS[1:]:
        open_tab(page, tab)
        charts = [c for c in CHARTS if c.tab == tab]
        assert not page.exception, tab
        assert [h.value for h in page.subheader] == ["Summary", *(c.title for c in charts)], tab
        assert chart_count(page) == len(charts), tab


def test_two_machines_with_the_same_points_stay_apart_with_a_notice(monkeypatch, tmp_path):
    page = run_app(monkeypatch, two_machines(tmp_path))
    page.multiselect(key="filter_machine").select("synthetic-machine").run()
    assert any("spans 2 machines" in w.value for w in page.warning)
    table = page.dataframe[0].value
    ok = table[table["status"] == "ok"]
    per_point = ok.groupby(["cell", "backend", "T", "H", "B"])["machine"].agg(sorted)
    assert (per_point.map(tuple) == (AMD_LABEL, INTEL_LABEL)).all()  # every point twice, never pooled
    for machine, path in ((AMD_LABEL, "amd.parquet"), (INTEL_LABEL, "intel.parquet")):
        alone = summary.summarize(store.read(tmp_path / path)[0])
        mine = ok[ok["machine"] == machine].sort_values(["backend", "T", "H", "B", "cell"])
        assert mine["median µs/step"].tolist() == pytest.approx(
            alone.loc[alone["status"] == "ok", "median_us"].tolist())

    both = pd.concat([store.read(tmp_path / "amd.parquet")[0], store.read(tmp_path / "intel.parquet")[0]])
    figure = next(c for c in CHARTS if c.key == "time_vs_hidden").build(both)
    panels = [a.text for a in figure.layout.annotations]
    assert "float · AMD EPYC (Zen 4) @ bench-host (syntheti)" in panels
    assert "float · Intel Xeon @ intel-host (intel-ma)" in panels
    for trace in figure.data:
        if trace.customdata is not None:
            assert len({row[-2] for row in trace.customdata}) == 1, trace.name  # one machine per series
    assert {"synthetic-machine", "intel-machine"} == set(speedups(both)["machine"])
    assert len(speedups(both)) == 2 * len(speedups(store.read(tmp_path / "amd.parquet")[0]))


def test_summary_table_figures_are_the_sweeps_summary(monkeypatch, tmp_path):
    out = tmp_path / "sweep.parquet"
    result = CliRunner().invoke(app, ["sweep", "--cells", "gru,reluadd", "--backends", "torch",
                                      "--seq-lens", "6", "--hidden", "8,16", "--input-size", "3",
                                      "--min-time", "0.01", "--repeats", "3", "--format", "json",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    printed = pd.DataFrame(json.loads(result.stdout))
    page = run_app(monkeypatch, out)
    shown = page.dataframe[0].value
    assert len(shown) == len(printed) == 4
    for column, printed_column in (("median µs/step", "median_us"), ("IQR µs", "iqr_us"),
                                   ("vs GRU", "vs_gru"), ("n", "samples"), ("H", "hidden_size")):
        assert shown[column].tolist() == pytest.approx(printed[printed_column].tolist()), column
    rows = store.read(out)[0]
    _, markdown = data.summary_downloads(data.summary_table(rows), data.accuracy_summary(rows))
    assert summary.format_markdown(summary.summarize(rows)) in markdown.decode()


def test_compare_in_the_page_matches_rnnbench_compare(monkeypatch, tmp_path):
    write_results(tmp_path / "a.parquet", run_id="runA")
    write_results(tmp_path / "b.parquet", run_id="runB", seed=1, days_later=1)
    page = open_tab(run_app(monkeypatch, tmp_path), "Compare")
    assert page.selectbox(key="compare_baseline").value.startswith("run: 2026-01-05")
    assert page.selectbox(key="compare_candidate").value.startswith("run: 2026-01-06")
    shown = page.dataframe[-1].value.set_index("point_id")
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet"),
                                      "--format", "json"])
    cli = json.loads(result.stdout)
    points = pd.DataFrame(cli["points"]).set_index("point_id")
    assert sorted(shown.index) == sorted(points.index)
    assert shown["mark"].to_dict() == points["mark"].to_dict()
    compared = points["ratio"].notna()
    assert shown.loc[compared[compared].index, "ratio"].tolist() == pytest.approx(
        points.loc[compared, "ratio"].tolist())
    line = next(m.value for m in page.markdown if "geometric mean" in m.value)
    assert f"over {cli['summary']['compared']} points: {cli['summary']['geomean_ratio']:.3f}" in line


def test_a_link_value_that_matches_nothing_gets_a_notice(monkeypatch, tmp_path):
    write_results(tmp_path / "a.parquet")
    page = run_app(monkeypatch, tmp_path, query={"backend": ["float", "nosuch"], "hidden": "64"})
    assert any("'nosuch'" in w.value and "Backend" in w.value for w in page.warning)
    assert page.multiselect(key="filter_backend").value == ["float"]
    assert page.multiselect(key="filter_hidden").value == [64]


def test_page_filters_follow_and_update_the_url(monkeypatch, tmp_path):
    write_results(tmp_path / "a.parquet")
    page = run_app(monkeypatch, tmp_path, query={"backend": "float"})
    assert page.multiselect(key="filter_backend").value == ["float"]
    total = len(as_stored(synthetic_rows()))
    float_rows = sum(r["backend"] == "float" for r in synthetic_rows())
    assert any(c.value.startswith(f"{float_rows} of {total} rows") for c in page.caption)

    page.multiselect(key="filter_cell").select("gru").run()
    url = {k: [v] if isinstance(v, str) else list(v) for k, v in page.query_params.items()}
    assert url == {"machine": ["synthetic-machine"], "cell": ["gru"], "backend": ["float"]}
    assert chart_count(page) == len(FIRST_TAB) and not page.exception

    open_tab(page, "Encrypted")  # the float filter hides the CKKS rows: say so, not "never run"
    assert "Filtered out" in page.get("plotly_chart")[0].proto.spec

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
    assert chart_count(page) == len(FIRST_TAB) and not page.exception


def test_without_results_of_its_own_the_page_shows_the_reference_results(monkeypatch, tmp_path):
    page = run_app(monkeypatch, tmp_path)
    assert "showing the shipped reference results" in page.info[0].value
    assert not page.error and chart_count(page) == len(FIRST_TAB) and not page.exception
    page.toggle(key="reference").set_value(False).run()
    assert "No results loaded" in page.info[0].value
    assert "no results files" in page.error[0].value
    assert chart_count(page) == 0 and not page.exception


def test_every_accuracy_row_is_on_the_accuracy_charts(rows):
    untimed = as_stored([dict(r, backend="ckks", backend_params='{"poly_degree": 15}',
                              point_id=r["point_id"] + "-deg15", n_eval=256)
                         for r in synthetic_rows() if r["kind"] == "accuracy" and r["backend"] == "ckks"])
    both = pd.concat([rows, untimed], ignore_index=True)
    points = accuracy_points(both)
    assert len(points) == 18 + 6
    by_backend = next(c for c in CHARTS if c.key == "accuracy_by_backend").build(both)
    bars = [t for t in by_backend.data if t.type == "bar"]
    assert sum(len(t.x) for t in bars) == len(points)
    assert any("no float reference" in a.text for a in by_backend.layout.annotations)  # the new rows
    assert all("n=" in x and "H=" in x for t in bars for x in t.x)
    vs_cost = next(c for c in CHARTS if c.key == "accuracy_vs_cost").build(both)
    markers = [t for t in vs_cost.data if t.mode == "markers" and t.x[0] is not None]
    assert sum(len(t.x) for t in markers) == len(points)
    untimed_count = accuracy_with_cost(both)["cost_us"].isna().sum()
    assert untimed_count >= 6
    assert any(f"{untimed_count} rows without timing" in a.text for a in vs_cost.layout.annotations)


def test_encrypted_accuracy_is_drawn_against_depth_and_bit_width_beside_float(rows):
    digits = [r for r in synthetic_rows() if r["kind"] == "accuracy" and r["task"] == "digits"]
    gru_ckks, reluadd_ckks = (next(r for r in digits if r["cell"] == cell and r["backend"] == "ckks")
                              for cell in ("gru", "reluadd"))
    extra = [  # a cheaper CKKS setting, a polynomial-aware model with its float, a TFHE width
        dict(gru_ckks, point_id="deeper", backend_params='{"poly_err": 0.01}', ckks_depth_per_step=9,
             metric_value=0.80),
        *(dict(reluadd_ckks, point_id=f"aware-{backend}", backend=backend, model_activations="ckks",
               metric_value=value) for backend, value in (("float", 0.9), ("ckks", 0.88))),
        dict(gru_ckks, point_id="tfhe", backend="tfhe", backend_params='{"act_bits": 4}',
             ckks_depth_per_step=None, tfhe_act_bits=4, metric_value=0.85),
    ]
    both = pd.concat([rows, as_stored(extra)], ignore_index=True)
    points = encrypted_accuracy_points(both)
    # every CKKS/TFHE accuracy row with its depth or width, none of the others
    assert len(points) == 2 * 3 + 1 + 1 + 1
    fig = accuracy_vs_depth(both)
    titles = [a.text for a in fig.layout.annotations]
    assert any(t.startswith("ckks · digits") for t in titles) and any(t.startswith("tfhe") for t in titles)
    markers = [t for t in fig.data if t.mode == "lines+markers" and t.x[0] is not None]
    assert sum(len(t.x) for t in markers) == len(points)
    gru = [t for t in markers if t.name == "gru as trained" and len(t.x) == 2]
    assert len(gru) == 1 and list(gru[0].x) == [9, 12] and list(gru[0].y) == [0.80, 0.95]
    # the polynomial-aware model is its own series, compared with its own float accuracy
    aware = points[points["series"] == "ckks-aware model"]
    assert len(aware) == 1 and aware["float_value"].iloc[0] == 0.9 and aware["metric_value"].iloc[0] == 0.88
    floats = [t for t in fig.data if t.mode == "lines" and t.line.dash == "dot"]
    assert [t.y[0] for t in floats] == [0.9]
    # an encrypted sample of one item beside the simulated whole set: never one line
    sample = dict(gru_ckks, point_id="tfhe-1", backend="tfhe", backend_params='{"act_bits": 4}',
                  ckks_depth_per_step=None, tfhe_act_bits=4, metric_value=0.0, n_eval=1)
    points = encrypted_accuracy_points(pd.concat([both, as_stored([sample])], ignore_index=True))
    tfhe = points[points["backend"] == "tfhe"]
    assert sorted(tfhe["series"]) == sorted([f"as trained n={gru_ckks['n_eval']}", "as trained n=1"])
    assert set(points.loc[points["backend"] == "ckks", "series"]) == {"as trained", "ckks-aware model"}


# rnnbench report and rnnbench dashboard (input checks) ---------------------------------------------

def test_report_is_one_self_contained_html_file_with_every_chart(tmp_path, monkeypatch):
    write_results(tmp_path / "results" / "a.parquet")
    write_corrupt(tmp_path / "results" / "bad.parquet")
    out = tmp_path / "report.html"
    monkeypatch.chdir(tmp_path)  # no path given: results/, like `rnnbench dashboard`
    result = CliRunner().invoke(app, ["report", "-o", str(out)])
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
