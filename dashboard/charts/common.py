"""What every chart shares: per-point statistics, series labels, colours, facets, empty figures.

Charts read only stored columns and get their statistics from :mod:`rnnbench.results.stats`
and :mod:`rnnbench.results.queries`, so the dashboard, the summary table and ``compare``
agree on every number.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from rnnbench.results import queries, stats

CELL_COLOURS = {"gru": "#1f77b4", "lstm": "#ff7f0e", "reluadd": "#2ca02c"}
DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
TEMPLATE = "plotly_white"

# The configuration keys that tell two lines of one cell apart, with their short labels.
SERIES_KEYS = {"seq_len": "T", "hidden_size": "H", "batch_size": "B", "input_size": "I",
               "threads": "threads", "backend_params": "", "task": "task", "seed": "seed"}


def colour(name: str) -> str:
    """A stable colour per cell (and any other name), the same in every chart."""
    if name in CELL_COLOURS:
        return CELL_COLOURS[name]
    palette = qualitative.D3[3:]
    return palette[sum(map(ord, name)) % len(palette)]


def band_colour(hex_colour: str, alpha: float = 0.18) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def empty_figure(title: str, message: str) -> go.Figure:
    """A figure that says why it has nothing to show (no data of this kind in the selection)."""
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font={"size": 14, "color": "#666"})
    fig.update_layout(title=title, template=TEMPLATE, height=260,
                      xaxis={"visible": False}, yaxis={"visible": False})
    return fig


def ok_status(rows: pd.DataFrame) -> pd.Series:
    return rows["status"].fillna("ok") == "ok"


def point_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per successfully measured timing point (its latest run), with time quartiles.

    Columns: every stored column of the point's rows (its facts: cost model, errors,
    CKKS counters) plus ``n``, ``q1``, ``median``, ``q3`` of the time per step in seconds.
    """
    latest, samples = queries.latest_points(rows)
    if samples.empty:
        return latest.iloc[0:0].assign(n=0, q1=np.nan, median=np.nan, q3=np.nan)
    quartiles = samples.groupby("point_id")["time_per_step_s"].agg(
        lambda s: stats.quartiles(s.to_numpy()))
    table = latest[latest["point_id"].isin(quartiles.index)].copy()
    table["n"] = table["point_id"].map(samples.groupby("point_id").size())
    for i, name in enumerate(("q1", "median", "q3")):
        table[name] = table["point_id"].map(quartiles.str[i])
    return table.reset_index(drop=True)


def format_params(value: object) -> str:
    """``'{"bits": 8}'`` -> ``'bits=8'``; empty parameters -> ``''``."""
    if not isinstance(value, str) or value in ("", "{}"):
        return ""
    try:
        params = json.loads(value)
    except json.JSONDecodeError:
        return value
    return " ".join(f"{k}={v}" for k, v in params.items())


def series_labels(frame: pd.DataFrame, exclude: Iterable[str] = ()) -> pd.Series:
    """A short label per row from the configuration keys that vary in ``frame`` (e.g. ``'H=64 B=1'``).

    Keys that take one value in the whole frame are left out, so labels stay short
    and a chart of a single configuration has no series labels at all.
    """
    exclude = set(exclude)
    parts = []
    for key, short in SERIES_KEYS.items():
        if key in exclude or key not in frame or frame[key].nunique(dropna=False) <= 1:
            continue
        values = varying_params(frame) if key == "backend_params" else frame[key]
        prefix = f"{short}=" if short else ""
        parts.append(values.map(lambda v, p=prefix: "" if pd.isna(v) or v == "" else f"{p}{v}"))
    if not parts:
        return pd.Series("", index=frame.index, dtype=object)
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.str.cat(part, sep=" ")
    return joined.str.strip().str.replace(r"\s+", " ", regex=True)


def varying_params(frame: pd.DataFrame) -> pd.Series:
    """Each row's backend parameters that vary within its backend (``'packing=batch'``).

    A parameter every point of a backend shares (CKKS's degrees at their defaults, say)
    says nothing about the difference between lines, so it stays out of the legend.
    """
    parsed = frame["backend_params"].map(lambda v: json.loads(v) if isinstance(v, str) and v else {})
    labels = pd.Series("", index=frame.index, dtype=object)
    for _, index in frame.groupby("backend").groups.items():
        params = parsed.loc[index]
        keys = sorted({key for p in params for key in p})
        varying = [k for k in keys if len({json.dumps(p.get(k)) for p in params}) > 1]
        labels.loc[index] = params.map(lambda p, v=varying: " ".join(f"{k}={p[k]}" for k in v if k in p))
    return labels


def series_sort_key(label: str) -> list:
    """Sort ``'H=16'`` before ``'H=128'``: numbers inside labels compare as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", label)]


def facets(titles: Sequence[str], columns: int = 3, row_height: int = 330,
           **kwargs) -> tuple[go.Figure, list[tuple[int, int]]]:
    """A grid of panels, one per title (usually per backend), wrapped after ``columns``.

    Returns the figure and each panel's ``(row, col)``. Axes are independent: backends
    differ by orders of magnitude, and each panel is read for its cells' relation.
    """
    titles = list(titles) or [""]
    cols = min(columns, len(titles))
    rows = math.ceil(len(titles) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.07,
                        vertical_spacing=min(0.14, 0.45 / rows), **kwargs)
    fig.update_layout(template=TEMPLATE, height=90 + row_height * rows, margin={"t": 80, "r": 20},
                      legend={"groupclick": "togglegroup"})
    return fig, [(i // cols + 1, i % cols + 1) for i in range(len(titles))]


def discrete_log_ticks(fig: go.Figure, axis: str, values: Iterable[float], row: int, col: int) -> None:
    """Tick a panel's log axis at the measured values (H = 16, 64, 256), not at 2, 3, 4, 5, ..."""
    values = sorted({float(v) for v in values if pd.notna(v)})
    if 0 < len(values) <= 10:
        update = fig.update_xaxes if axis == "x" else fig.update_yaxes
        update(tickvals=values, ticktext=[f"{v:g}" for v in values], row=row, col=col)


class Traces:
    """Collects the traces of a figure with panels and adds them in one call.

    One ``add_traces`` call is several times faster than a call per trace, which keeps
    the page responsive; :meth:`first` shows each legend entry once, however many
    panels draw the same series.
    """

    def __init__(self) -> None:
        self.items: list[tuple[go.BaseTraceType, int, int]] = []
        self.shown: set[str] = set()

    def first(self, name: str) -> bool:
        if name in self.shown:
            return False
        self.shown.add(name)
        return True

    def add(self, trace: go.BaseTraceType, row: int = 1, col: int = 1) -> None:
        self.items.append((trace, row, col))

    def into(self, fig: go.Figure) -> go.Figure:
        if self.items:
            traces, rows, cols = zip(*self.items, strict=True)
            fig.add_traces(list(traces), rows=list(rows), cols=list(cols))
        return fig


def add_median_band(traces: Traces, frame: pd.DataFrame, x: str, name: str, colour_hex: str,
                    dash: str, row: int, col: int) -> None:
    """A median line with its inter-quartile band (``q1``..``q3``), in µs per step."""
    frame = frame.sort_values(x)  # numpy, not Series: plotly validates arrays much faster
    xs = frame[x].to_numpy()
    lo, mid, hi = (frame[q].to_numpy() * 1e6 for q in ("q1", "median", "q3"))
    traces.add(go.Scatter(
        x=np.concatenate([xs, xs[::-1]]), y=np.concatenate([hi, lo[::-1]]), fill="toself",
        fillcolor=band_colour(colour_hex), mode="lines", line={"width": 0}, hoverinfo="skip",
        legendgroup=name, showlegend=False, name=f"{name} IQR"), row, col)
    traces.add(go.Scatter(
        x=xs, y=mid, mode="lines+markers", name=name, legendgroup=name,
        showlegend=traces.first(name), line={"color": colour_hex, "dash": dash},
        customdata=np.stack([lo, hi, frame["n"].to_numpy(), mid * frame["seq_len"].to_numpy()], axis=-1),
        hovertemplate=(f"{name}<br>{x}=%{{x}}<br>median %{{y:.3g}} µs"
                       "<br>IQR %{customdata[0]:.3g}–%{customdata[1]:.3g} µs/step"
                       "<br>%{customdata[3]:.3g} µs/sequence<br>n=%{customdata[2]}<extra></extra>")),
        row, col)


def cell_series(frame: pd.DataFrame, exclude: Iterable[str],
                within: pd.DataFrame | None = None) -> list[tuple[str, str, str, pd.DataFrame]]:
    """Split points into lines: ``(legend name, colour, dash, points)`` per cell and configuration.

    ``within`` is the whole figure's points when ``frame`` is one panel of it, so names
    and dashes mean the same in every panel.
    """
    within = frame if within is None else within
    labels = series_labels(within, exclude)
    dash_of = {label: DASHES[i % len(DASHES)]
               for i, label in enumerate(sorted(labels.unique(), key=series_sort_key))}
    lines = []
    for (cell, label), group in frame.groupby([frame["cell"], labels.loc[frame.index]], sort=True):
        name = f"{cell} {label}".strip()
        lines.append((name, colour(cell), dash_of[label], group))
    return lines
