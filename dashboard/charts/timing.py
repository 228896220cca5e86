"""How time grows with sequence length and hidden size, and how noisy the samples are."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.charts.common import (
    WITHIN_PANEL,
    Traces,
    add_cell_entries,
    add_key_entries,
    add_median_series,
    colour,
    empty_figure,
    facets,
    legend_below,
    log_axis,
    panel_titles,
    point_table,
    series_labels,
    series_sort_key,
    symbol_map,
)
from rnnbench.results import queries

NO_TIMING = "No successful timing samples in the selection."


def time_vs_seq_len(rows: pd.DataFrame) -> go.Figure:
    """Time per step vs T, log-log, one panel per backend (and B, machine); a toggle shows per sequence."""
    title = "Time vs sequence length (median, IQR band)"
    points = point_table(rows)
    if points.empty:
        return empty_figure(title, NO_TIMING)
    fig = _median_panels(points, "seq_len", "sequence length T")
    _per_sequence_toggle(fig, title)
    return fig


def _median_panels(points: pd.DataFrame, x: str, x_title: str, extra=None) -> go.Figure:
    """One log-log panel per backend (and B, machine); colour is the cell, a marker symbol each
    other configuration (H, T, parameters), so the legend names cells and symbols, not 24 lines.

    ``extra(traces, panel, row, col)`` may add traces to each panel (e.g. slope guides).
    """
    titles = panel_titles(points)
    labels = series_labels(points, exclude=[x, *WITHIN_PANEL], panels=titles)
    symbols = symbol_map(labels)
    order = sorted(titles.unique(), key=series_sort_key)
    fig, positions = facets(order)
    traces = Traces()
    add_cell_entries(traces, points["cell"])
    add_key_entries(traces, symbols, "marker")
    for (row, col), title in zip(positions, order, strict=True):
        panel = points[titles == title]
        for (cell, label), line in panel.groupby([panel["cell"], labels[panel.index]], sort=True):
            add_median_series(traces, line, x, f"{cell} {label}".strip(), cell, symbols[label], row, col)
        log_axis(fig, "x", panel[x], row, col, exact=True)
        log_axis(fig, "y", pd.concat([panel["q1"], panel["q3"]]) * 1e6, row, col)
        if extra:
            extra(traces, panel, row, col)
    traces.into(fig)
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text="µs per step")
    return legend_below(fig, points["cell"].nunique() + len(symbols) + 2)


def _per_sequence_toggle(fig: go.Figure, title: str) -> None:
    """Buttons that switch every trace between time per step and per sequence (y times T = x)."""
    def scaled(trace, factor):
        return [None if y is None else y * factor(x) for x, y in zip(trace.x, trace.y, strict=True)]

    per_step = [list(trace.y) for trace in fig.data]
    per_sequence = [scaled(t, lambda x: x) for t in fig.data]
    axes = [name for name in fig.layout if name.startswith("yaxis")]

    # Tick labels are computed for µs per step; per sequence, one full label per decade.
    step_ticks = {f"{a}.{k}": v for a in axes for k, v in (
        ("tickmode", "array"), ("tickvals", fig.layout[a].tickvals), ("ticktext", fig.layout[a].ticktext))}
    sequence_ticks = {f"{a}.{k}": v for a in axes for k, v in (
        ("tickmode", "linear"), ("tick0", 0), ("dtick", 1), ("exponentformat", "none"))}

    def view(ys: list, unit: str, ticks: dict) -> list:
        return [{"y": ys}, {"title.text": f"{title}: {unit}", **{f"{a}.title.text": unit for a in axes},
                            **ticks}]

    fig.update_layout(title=f"{title}: µs per step", margin={"t": 110}, updatemenus=[{
        "type": "buttons", "direction": "right", "x": 1.0, "xanchor": "right", "y": 1.02,
        "yanchor": "bottom", "pad": {"b": 30}, "showactive": True, "buttons": [
            {"label": "per step", "method": "update",
             "args": view(per_step, "µs per step", step_ticks)},
            {"label": "per sequence", "method": "update",
             "args": view(per_sequence, "µs per sequence", sequence_ticks)},
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
    samples = samples.assign(config=series_labels(samples, exclude=[*WITHIN_PANEL]).replace("", "all"))
    titles = panel_titles(samples)
    order = sorted(titles.unique(), key=series_sort_key)
    fig, positions = facets(order, columns=2)
    traces = Traces()
    for (row, col), title_ in zip(positions, order, strict=True):
        panel = samples[titles == title_]
        for cell, group in panel.groupby("cell"):
            traces.add(go.Box(
                x=group["config"].to_numpy(), y=group["time_per_step_s"].to_numpy() * 1e6,
                name=cell, legendgroup=cell,
                showlegend=traces.first(cell), marker={"color": colour(cell), "size": 3},
                boxpoints="all", jitter=0.3, pointpos=0, line={"width": 1}), row, col)
        configs = sorted(panel["config"].unique(), key=series_sort_key)
        fig.update_xaxes(categoryorder="array", categoryarray=configs, row=row, col=col)
        log_axis(fig, "y", panel["time_per_step_s"] * 1e6, row, col)
    traces.into(fig)
    fig.update_yaxes(title_text="µs per step")
    fig.update_layout(title=title, boxmode="group")
    return legend_below(fig, samples["cell"].nunique())
