"""The rnnbench results dashboard: a Streamlit page that only arranges.

Loading, filtering and exporting live in :mod:`dashboard.data`, the figures in
:mod:`dashboard.charts`, the caches in :mod:`dashboard.views`. Started by
``rnnbench dashboard [PATHS...]``, which passes the paths in the ``RNNBENCH_RESULTS``
environment variable; the filter state lives in the URL's query parameters, so a link
reproduces the view.
"""

from __future__ import annotations

import functools
import hashlib

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import data, views
from dashboard.charts import CHARTS
from dashboard.report import build_report

st.set_page_config(page_title="rnnbench results", page_icon="⏱", layout="wide")


def _load() -> tuple[pd.DataFrame, list, list, data.Signature, str]:
    paths = data.paths_from_env()
    signature, missing = data.file_signature(paths)
    loaded = [views.load_files(signature)]
    st.sidebar.caption("Results: " + ", ".join(f"`{p}`" for p in paths))
    uploads = st.sidebar.file_uploader("Add results files", type=["parquet"], accept_multiple_files=True,
                                       key="upload")
    files = tuple((u.name, u.getvalue()) for u in uploads or [])
    if files:
        loaded.append(views.load_uploads(files))
    rows, runs, problems = data.combine(*loaded)
    problems = missing + problems
    digest = hashlib.sha256(b"".join(c for _, c in files)).hexdigest()[:16] if files else ""
    return rows, runs, problems, signature, digest


def _filters(rows: pd.DataFrame) -> dict[str, list]:
    """Sidebar filters, initialised from the URL once per session and written back to it."""
    st.sidebar.header("Filters")
    st.sidebar.caption("Empty means all. The URL keeps the selection: share it to share the view.")
    from_url = data.parse_selection({f.param: st.query_params.get_all(f.param) for f in data.FILTERS}, rows)
    selection = {}
    for f in data.FILTERS:
        options = data.filter_options(rows, f.column)
        key = f"filter_{f.param}"
        if key not in st.session_state:
            st.session_state[key] = from_url[f.column]
        st.session_state[key] = [v for v in st.session_state[key] if v in options]
        selection[f.column] = st.sidebar.multiselect(f.label, options, key=key, placeholder="all")
    st.query_params.from_dict(data.to_query(selection))
    return selection


def main() -> None:
    st.title("rnnbench results")
    rows, runs, problems, signature, uploads = _load()
    for problem in problems:
        st.error(f"Not loaded: {problem}", icon="⚠️")
    if rows.empty:
        st.info("No results loaded. Run `rnnbench sweep` to measure, start the dashboard with "
                "`rnnbench dashboard PATH...`, or add `.parquet` files in the sidebar.")
        return
    with st.expander(f"Loaded runs ({len(runs)})", expanded=True):
        st.dataframe(data.runs_table(rows, runs), hide_index=True, width="stretch")

    selection = _filters(rows)
    selected = data.apply_filters(rows, selection)
    if selected.empty:
        st.warning("No rows match this selection. Clear or widen a filter in the sidebar.")
        return
    view = views.view_key(signature, uploads, selection)

    st.caption(f"{len(selected)} of {len(rows)} rows selected · "
               f"{selected['point_id'].nunique()} points · {selected['run_id'].nunique()} runs")
    left, middle, right, _ = st.columns([1, 1, 1, 3])
    left.download_button("Rows as Parquet", functools.partial(data.results_file_bytes, selected, runs),
                         file_name="rnnbench-selection.parquet", mime="application/vnd.apache.parquet",
                         on_click="ignore", key="download_parquet")
    middle.download_button("Rows as CSV", functools.partial(_csv, selected),
                           file_name="rnnbench-selection.csv", mime="text/csv", on_click="ignore",
                           key="download_csv")
    right.download_button("All charts (HTML)", functools.partial(build_report, selected, runs, problems),
                          file_name="rnnbench-report.html", mime="text/html", on_click="ignore",
                          key="download_report")

    for chart in CHARTS:
        st.subheader(chart.title, anchor=chart.key)
        st.caption(chart.about)
        figure = views.build_chart(chart.key, view, selected)
        st.plotly_chart(figure, width="stretch", key=f"chart_{chart.key}")
        st.download_button("Chart as HTML", functools.partial(_standalone_html, figure),
                           file_name=f"rnnbench-{chart.key}.html", mime="text/html", on_click="ignore",
                           key=f"download_{chart.key}")


def _csv(rows: pd.DataFrame) -> bytes:
    return rows.to_csv(index=False).encode()


def _standalone_html(figure: go.Figure) -> str:
    """One chart as an HTML file that opens offline (plotly.js inlined)."""
    return figure.to_html(include_plotlyjs=True, full_html=True)


main()
