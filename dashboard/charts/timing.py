"""How time grows with sequence length and hidden size, and how noisy the samples are."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.charts.common import (
    Traces,
    add_median_band,
    cell_series,
    colour,
    discrete_log_ticks,
    empty_figure,
    facets,
    point_table,
    series_labels,
    series_sort_key,
)
from rnnbench.results import queries

NO_TIMING = "No successful timing samples in the selection."


def time_vs_seq_len(rows: pd.DataFrame) -> go.Figure:
    """Time per step vs T, log-log, one panel per backend; a toggle shows time per sequence."""
    title = "Time vs sequence length (median, IQR band)"
    points = point_table(rows)
    if points.empty:
        return empty_figure(title, NO_TIMING)
    fig = _median_panels(points, "seq_len", "sequence length T")
    _per_sequence_toggle(fig, title)
    return fig


def _median_panels(points: pd.DataFrame, x: str, x_title: str, extra=None) -> go.Figure:
    """One log-log panel per backend with each cell's median time vs ``x`` and its IQR band.

    ``extra(traces, panel, row, col)`` may add traces to each panel (e.g. slope guides).
    """
    backends = sorted(points["backend"].unique())
    fig, positions = facets(backends)
    traces = Traces()
    for (row, col), backend in zip(positions, backends, strict=True):
        panel = points[points["backend"] == backend]
        for name, hex_colour, dash, line in cell_series(panel, [x, "task", "seed"], points):
            add_median_band(traces, line, x, name, hex_colour, dash, row, col)
        discrete_log_ticks(fig, "x", panel[x], row, col)
        if extra:
            extra(traces, panel, row, col)
    traces.into(fig)
    fig.update_xaxes(type="log", title_text=x_title)
    fig.update_yaxes(type="log", title_text="µs per step")
    return fig


def _per_sequence_toggle(fig: go.Figure, title: str) -> None:
    """Buttons that switch every trace between time per step and per sequence (y times T = x)."""
    per_step = [list(trace.y) for trace in fig.data]
    per_sequence = [[y * x for x, y in zip(trace.x, trace.y, strict=True)] for trace in fig.data]
    axes = [name for name in fig.layout if name.startswith("yaxis")]

    def view(ys: list, unit: str) -> list:
        return [{"y": ys}, {"title.text": f"{title}: {unit}", **{f"{a}.title.text": unit for a in axes}}]

    fig.update_layout(title=f"{title}: µs per step", updatemenus=[{
        "type": "buttons", "direction": "right", "x": 1.0, "xanchor": "right", "y": 1.08,
        "yanchor": "bottom", "showactive": True, "buttons": [
            {"label": "per step", "method": "update", "args": view(per_step, "µs per step")},
            {"label": "per sequence", "method": "update", "args": view(per_sequence, "µs per sequence")},
        ]}])


def time_vs_hidden(rows: pd.DataFrame) -> go.Figure:
    """Time per step vs H with slope guides: ∝H is elementwise-bound, ∝H² matrix-product-bound."""
    title = "Time per step vs hidden size (where the matrix product takes over)"
    points = point_table(rows)
    if points.empty:
        return empty_figure(title, NO_TIMING)
    fig = _median_panels(points, "hidden_size", "hidden size H", extra=_slope_guides)
    fig.update_layout(title=title)
    return fig


def _slope_guides(traces: Traces, panel: pd.DataFrame, row: int, col: int) -> None:
    """Dotted lines ∝H and ∝H² from the panel's fastest point at the smallest H."""
    sizes = sorted(panel["hidden_size"].unique())
    if len(sizes) < 2:
        return
    h0 = sizes[0]
    t0 = panel.loc[panel["hidden_size"] == h0, "median"].min() * 1e6
    for power, name in ((1, "∝ H (elementwise-bound)"), (2, "∝ H² (matrix-product-bound)")):
        traces.add(go.Scatter(
            x=sizes, y=[t0 * (h / h0) ** power for h in sizes], mode="lines", name=name,
            legendgroup=name, showlegend=traces.first(name), hoverinfo="skip",
            line={"color": "#999", "dash": "dot" if power == 1 else "dash", "width": 1}), row, col)


def sample_boxes(rows: pd.DataFrame) -> go.Figure:
    """Every timed sample of every point as box plots: the noise behind each median."""
    title = "Raw samples per point (time per step, warm-up excluded)"
    _, samples = queries.latest_points(rows)
    if samples.empty:
        return empty_figure(title, NO_TIMING)
    samples = samples.assign(config=series_labels(samples, exclude=["task", "seed"]).replace("", "all"))
    backends = sorted(samples["backend"].unique())
    fig, positions = facets(backends, columns=2)
    traces = Traces()
    for (row, col), backend in zip(positions, backends, strict=True):
        panel = samples[samples["backend"] == backend]
        for cell, group in panel.groupby("cell"):
            traces.add(go.Box(
                x=group["config"].to_numpy(), y=group["time_per_step_s"].to_numpy() * 1e6,
                name=cell, legendgroup=cell,
                showlegend=traces.first(cell), marker={"color": colour(cell), "size": 3},
                boxpoints="all", jitter=0.3, pointpos=0, line={"width": 1}), row, col)
        order = sorted(panel["config"].unique(), key=series_sort_key)
        fig.update_xaxes(categoryorder="array", categoryarray=order, row=row, col=col)
    traces.into(fig)
    fig.update_yaxes(type="log", title_text="µs per step")
    fig.update_layout(title=title, boxmode="group")
    return fig
