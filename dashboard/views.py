"""The page's caches: results read and charts built once per set of files and filters.

They live in a module rather than in the page script so that ``dashboard.serve`` can
fill them for the unfiltered view while the server starts: the first visitor then gets
every chart from the cache instead of waiting for them to be built. ``cache_resource``
(shared objects, no copies) because nothing downstream modifies a loaded frame or a
built figure, and copying them on every rerun would cost more than building some.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import data
from dashboard.charts import CHARTS
from rnnbench.results import store

View = tuple  # (files, uploads digest, selection): what the charts of a page depend on


@st.cache_resource(show_spinner="Loading results…", max_entries=16)
def load_files(signature: data.Signature) -> data.Loaded:
    """The files of ``signature`` (path, mtime, size), read again only when one of them changes."""
    return store.read_many([path for path, _, _ in signature])


@st.cache_resource(show_spinner="Reading uploaded files…", max_entries=16)
def load_uploads(files: tuple[tuple[str, bytes], ...]) -> data.Loaded:
    return data.read_uploads(files)


@st.cache_resource(max_entries=256, show_spinner=False)
def build_chart(key: str, view: View, _rows: pd.DataFrame) -> go.Figure:
    """The chart ``key`` of the rows of ``view``; ``_rows`` is not hashed, ``view`` identifies it."""
    return next(c for c in CHARTS if c.key == key).build(_rows)


def view_key(signature: data.Signature, uploads: str, selection: Mapping[str, Sequence]) -> View:
    return signature, uploads, tuple((c, tuple(map(str, chosen))) for c, chosen in selection.items())


def warm(paths: Sequence[str]) -> None:
    """Load ``paths`` and build every chart of the unfiltered view into the caches."""
    signature, _ = data.file_signature(paths)
    rows, _, _ = load_files(signature)
    if rows.empty:
        return
    selection = {f.column: [] for f in data.FILTERS}
    selected = data.apply_filters(rows, selection)
    for chart in CHARTS:
        build_chart(chart.key, view_key(signature, "", selection), selected)
