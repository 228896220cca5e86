"""The page's caches: results read and charts built once per set of files and filters.

They live in a module rather than in the page script so that ``dashboard.serve`` can
fill them for the default view while the server starts: the first visitor then gets
the summary and the first tab's charts from the cache instead of waiting for them.
``cache_resource`` (shared objects, no copies) because nothing downstream modifies a
loaded frame or a built figure, and copying them on every rerun would cost more than
building some.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import data
from dashboard.charts import CHARTS, TABS
from rnnbench.results import store
from rnnbench.results.queries import with_machine

View = tuple  # (files, uploads digest, selection): what the charts of a page depend on


def _with_machine(loaded: data.Loaded) -> data.Loaded:
    rows, runs, problems = loaded
    return with_machine(rows), runs, problems


@st.cache_resource(show_spinner="Loading results…", max_entries=16)
def load_files(signature: data.Signature) -> data.Loaded:
    """The files of ``signature`` (path, mtime, size), read again only when one of them changes."""
    return _with_machine(store.read_many([path for path, _, _ in signature]))


@st.cache_resource(show_spinner="Reading uploaded files…", max_entries=16)
def load_uploads(files: tuple[tuple[str, bytes], ...]) -> data.Loaded:
    return _with_machine(data.read_uploads(files))


@st.cache_resource(max_entries=256, show_spinner=False)
def build_chart(key: str, view: View, _rows: pd.DataFrame) -> go.Figure:
    """The chart ``key`` of the rows of ``view``; ``_rows`` is not hashed, ``view`` identifies it."""
    return next(c for c in CHARTS if c.key == key).build(_rows)


@st.cache_resource(max_entries=64, show_spinner=False)
def build_summary(view: View, _rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The timing and accuracy summary tables of the rows of ``view``."""
    return data.summary_table(_rows), data.accuracy_summary(_rows)


def view_key(signature: data.Signature, uploads: str, selection: Mapping[str, Sequence]) -> View:
    return signature, uploads, tuple((c, tuple(map(str, chosen))) for c, chosen in selection.items())


def default_selection(rows: pd.DataFrame) -> dict[str, list]:
    """The view a visitor without a link gets: every filter empty but Machine, the newest run's."""
    machine = data.newest_machine(rows)
    return {f.column: [machine] if f.column == "machine" and machine else [] for f in data.FILTERS}


def warm(paths: Sequence[str]) -> None:
    """Load ``paths`` and build the default view's summary and first tab into the caches."""
    signature, _ = data.file_signature(paths)
    rows, _, _ = load_files(signature)
    if rows.empty:
        return
    selection = default_selection(rows)
    selected = data.apply_filters(rows, selection)
    view = view_key(signature, "", selection)
    build_summary(view, selected)
    for chart in CHARTS:
        if chart.tab == TABS[0]:
            build_chart(chart.key, view, selected)
