"""The rnnbench results dashboard: a Streamlit page that only arranges.

Loading, filtering, summary and compare tables live in :mod:`dashboard.data`, the
figures in :mod:`dashboard.charts`, the caches in :mod:`dashboard.views`. Started by
``rnnbench dashboard [PATHS...]``, which passes the paths in the ``RNNBENCH_RESULTS``
environment variable; the filter state lives in the URL's query parameters, so a link
reproduces the view. The summary comes first; each chart tab draws only when opened.
"""

from __future__ import annotations

import functools
import hashlib

import pandas as pd
import streamlit as st

from dashboard import data, views
from dashboard.charts import CHARTS, TABS, explain_empty
from dashboard.report import build_report
from rnnbench.results import compare as comparison

st.set_page_config(page_title="rnnbench results", page_icon="⏱", layout="wide")

COMPARE_TAB, RUNS_TAB = "Compare", "Runs and downloads"
# Per-chart image export from the chart's own toolbar (camera icon): drawn by the browser,
# no server round trip and no extra dependency.
CHART_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def _load() -> tuple[pd.DataFrame, list, list, data.Signature, str]:
    paths = data.paths_from_env()
    signature, missing = data.file_signature(paths)
    own = views.load_files(signature)
    reference = str(data.REFERENCE_RESULTS)
    if data.REFERENCE_RESULTS.is_dir() and reference not in paths:
        include = st.sidebar.toggle(
            "Add the shipped reference results", value=own[0].empty, key="reference",
            help=f"{reference}: the results that ship with rnnbench, kept apart from your own sweeps.")
        if include:
            paths = [*paths, reference]
            signature, missing = data.file_signature(paths)
            if own[0].empty:
                missing = [m for m in missing if "no results files" not in m]
                st.info("No results of your own yet: showing the shipped reference results "
                        "(`results/reference/`). `make sweep` measures this machine into `results/`.")
    loaded = [views.load_files(signature)]
    st.sidebar.caption("Results: " + ", ".join(f"`{p}`" for p in paths))
    uploads = st.sidebar.file_uploader("Add results files", type=["parquet"], accept_multiple_files=True,
                                       key="upload")
    files = tuple((u.name, u.getvalue()) for u in uploads or [])
    if files:
        loaded.append(views.load_uploads(files))
    rows, runs, problems = data.combine(*loaded)
    digest = hashlib.sha256(b"".join(c for _, c in files)).hexdigest()[:16] if files else ""
    return rows, runs, missing + problems, signature, digest


def _filters(rows: pd.DataFrame, runs: list) -> dict[str, list]:
    """Sidebar filters, initialised from the URL once per session and written back to it.

    Without a Machine in the URL the view opens on the newest run's machine.
    """
    st.sidebar.header("Filters")
    st.sidebar.caption("Empty means all. The URL keeps the selection: share it to share the view.")
    params = {f.param: st.query_params.get_all(f.param) for f in data.FILTERS}
    from_url = data.parse_selection(params, rows)
    if "filters_initialised" not in st.session_state:
        st.session_state["filters_initialised"] = True
        for label, values in data.unmatched(params, rows).items():
            st.session_state.setdefault("url_notices", []).append(
                f"{label} {', '.join(map(repr, values))} from the link matches nothing loaded; ignored.")
        if not params.get("machine"):
            from_url["machine"] = views.default_selection(rows)["machine"]
    labels = data.filter_names(rows, runs)
    selection = {}
    for f in data.FILTERS:
        options = data.filter_options(rows, f.column)
        key = f"filter_{f.param}"
        if key not in st.session_state:
            st.session_state[key] = from_url[f.column]
        st.session_state[key] = [v for v in st.session_state[key] if v in options]
        names = labels.get(f.column, {})
        selection[f.column] = st.sidebar.multiselect(f.label, options, key=key, placeholder="all",
                                                     format_func=lambda v, n=names: n.get(v, str(v)))
    st.query_params.from_dict({**data.to_query(selection)})
    return selection


def main() -> None:
    st.html("<style>[data-testid='stMainBlockContainer'] { padding-top: 2.5rem; }</style>")
    st.title("rnnbench results")
    rows, runs, problems, signature, uploads = _load()
    for problem in problems:
        st.error(f"Not loaded: {problem}", icon="⚠️")
    if rows.empty:
        st.info("No results loaded. Run `rnnbench sweep` to measure, start the dashboard with "
                "`rnnbench dashboard PATH...`, or add `.parquet` files in the sidebar.")
        return
    selection = _filters(rows, runs)
    for notice in st.session_state.get("url_notices", []):
        st.warning(notice, icon="🔗")
    selected = data.apply_filters(rows, selection)
    if selected.empty:
        st.warning("No rows match this selection. Clear or widen a filter in the sidebar.")
        return
    names = data.filter_names(selected, [])["machine"]
    machines = [names[m] for m in data.filter_options(selected, "machine")]
    if len(machines) > 1:
        st.warning(f"This selection spans {len(machines)} machines ({'; '.join(machines)}). Their numbers "
                   "are kept apart: separate panels or series in every chart, a machine column in the "
                   "summary.", icon="🖥️")
    view = views.view_key(signature, uploads, selection)
    st.caption(f"{len(selected)} of {len(rows)} rows · {selected['point_id'].nunique()} points · "
               f"{selected['run_id'].nunique()} runs · machine: {' + '.join(machines)}")
    _summary(view, selected)
    tabs = st.tabs([*TABS, COMPARE_TAB, RUNS_TAB], key="tab", on_change="rerun")
    for name, tab in zip([*TABS, COMPARE_TAB, RUNS_TAB], tabs, strict=True):
        if not tab.open:
            continue  # a closed tab costs nothing: its charts are built when it is opened
        with tab:
            if name == COMPARE_TAB:
                _compare(rows, runs)
            elif name == RUNS_TAB:
                _runs_and_downloads(rows, runs, selected, problems)
            else:
                _charts(name, view, selected, rows)


def _summary(view: views.View, selected: pd.DataFrame) -> None:
    """The first screen: median µs/step per point with the ratio to GRU, and accuracy per cell."""
    table, accuracy = views.build_summary(view, selected)
    st.subheader("Summary", anchor="summary")
    timing, right = st.columns([3, 2]) if not accuracy.empty else (st.container(), None)
    timing.caption("Median µs per step of each point's newest run on its machine (warm-up excluded), "
                   "IQR, and the ratio to GRU on the same backend, configuration and machine: what "
                   "`rnnbench sweep` prints. Click a column to sort.")
    timing.dataframe(data.summary_view(table), hide_index=True, width="stretch", height=280,
                     key="summary_table",
                     column_config={"median µs/step": st.column_config.NumberColumn(format="%.4g"),
                                    "IQR µs": st.column_config.NumberColumn(format="%.2g"),
                                    "vs GRU": st.column_config.NumberColumn(format="%.2f")})
    if right is not None:
        right.caption("Accuracy per cell and backend; `vs float`: the difference from float on the same "
                      "task, cell, H and evaluation set (`n`).")
        right.dataframe(data.accuracy_view(accuracy), hide_index=True, width="stretch", height=280,
                        key="accuracy_table",
                        column_config={"value": st.column_config.NumberColumn(format="%.4f"),
                                       "vs float": st.column_config.NumberColumn(format="%+.4f")})
    downloads = functools.partial(data.summary_downloads, table, accuracy)
    left, right, _ = st.columns([1, 1, 4])
    left.download_button("Summary as CSV", lambda: downloads()[0], file_name="rnnbench-summary.csv",
                         mime="text/csv", on_click="ignore", key="download_summary_csv")
    right.download_button("Summary as Markdown", lambda: downloads()[1], file_name="rnnbench-summary.md",
                          mime="text/markdown", on_click="ignore", key="download_summary_md")


def _charts(tab: str, view: views.View, selected: pd.DataFrame, loaded: pd.DataFrame) -> None:
    for chart in (c for c in CHARTS if c.tab == tab):
        st.subheader(chart.title, anchor=chart.key)
        st.caption(chart.about + " Camera icon (top right of the chart): PNG.")
        figure = explain_empty(chart, views.build_chart(chart.key, view, selected), loaded)
        st.plotly_chart(figure, width="stretch", key=f"chart_{chart.key}", config=CHART_CONFIG)


def _compare(rows: pd.DataFrame, runs: list) -> None:
    """`rnnbench compare` in the page: a baseline and a candidate, each a run or a machine."""
    st.caption("Each point's median time per step, candidate / baseline (above 1: slower), a "
               "Mann-Whitney U test on the samples, and a verdict per point: the same functions and "
               "defaults as `rnnbench compare` (α = 0.01, minimum effect 5%).")
    choices = data.compare_choices(rows, runs)
    labels = list(choices)
    left, right = st.columns(2)
    baseline = left.selectbox("Baseline", labels, index=min(1, len(labels) - 1), key="compare_baseline")
    candidate = right.selectbox("Candidate", labels, index=0, key="compare_candidate")
    if baseline == candidate:
        st.info("Pick two different runs or machines.")
        return
    try:
        table, summary, note = data.compare_rows(data.rows_of(rows, choices[baseline]),
                                                 data.rows_of(rows, choices[candidate]))
    except comparison.MixedMachines as exc:
        st.error(f"Cannot compare: {exc}.")
        return
    if note:
        st.warning(f"Different machines: {note}. The ratios mix machine and code.", icon="🖥️")
    st.markdown(f"**{comparison.summary_line(summary)}**")
    st.dataframe(table, hide_index=True, width="stretch", key="compare_table",
                 column_order=["mark", "cell", "backend", "backend_params", "seq_len", "hidden_size",
                               "batch_size", "baseline_median_us", "candidate_median_us", "ratio",
                               "ratio_low", "ratio_high", "p_value"])


def _runs_and_downloads(rows: pd.DataFrame, runs: list, selected: pd.DataFrame, problems: list) -> None:
    st.dataframe(data.runs_table(rows, runs), hide_index=True, width="stretch", key="runs_table")
    left, middle, right, _ = st.columns([1, 1, 1, 3])
    left.download_button("Selected rows as Parquet",
                         functools.partial(data.results_file_bytes, selected, runs),
                         file_name="rnnbench-selection.parquet", mime="application/vnd.apache.parquet",
                         on_click="ignore", key="download_parquet")
    middle.download_button("Selected rows as CSV", functools.partial(_csv, selected),
                           file_name="rnnbench-selection.csv", mime="text/csv", on_click="ignore",
                           key="download_csv")
    right.download_button("Report: every chart (HTML)",
                          functools.partial(build_report, selected, runs, problems),
                          file_name="rnnbench-report.html", mime="text/html", on_click="ignore",
                          key="download_report")


def _csv(rows: pd.DataFrame) -> bytes:
    return rows.to_csv(index=False).encode()


main()
