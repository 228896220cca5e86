"""Integer-quantized execution: output error against the float reference vs bit width."""

from __future__ import annotations

import json
import re

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts.common import (
    TEMPLATE,
    Traces,
    add_cell_entries,
    add_key_entries,
    colour,
    empty_figure,
    legend_below,
    log_axis,
    point_table,
    series_labels,
    symbol_map,
)

ERRORS = {"rel_l2_err": "relative L2 error (all outputs)", "final_max_abs_err": "max abs error (final state)"}


def bit_width(backend: str, backend_params: object) -> float:
    """Bits of an integer backend: a ``bits`` parameter, else the number in its name (``int8``)."""
    if isinstance(backend_params, str) and backend_params:
        try:
            bits = json.loads(backend_params).get("bits")
        except (json.JSONDecodeError, AttributeError):
            bits = None
        if bits is not None:
            return float(bits)
    match = re.fullmatch(r"int(\d+)", backend or "")
    return float(match.group(1)) if match else float("nan")


def integer_error_chart(rows: pd.DataFrame) -> go.Figure:
    """Error vs bit width, colour per cell, a marker per configuration, log error axis in 1e-n."""
    title = "Integer execution: error vs bit width"
    points = point_table(rows)
    if not points.empty:
        points = points.assign(bits=[bit_width(b, p) for b, p in
                                     zip(points["backend"], points["backend_params"], strict=True)])
        points = points.dropna(subset=["bits"])
    if points.empty:
        return empty_figure(title, "No integer-backend measurements in the selection (int8, int16, ...).")
    several = points["machine"].nunique() > 1
    labels = series_labels(points, exclude=["backend", "backend_params", "cell", "task", "seed", "machine"])
    if several:
        labels = (labels + " · " + points["machine_name"]).str.strip(" ·")
    symbols = symbol_map(labels)
    fig = make_subplots(rows=1, cols=len(ERRORS), subplot_titles=list(ERRORS.values()),
                        horizontal_spacing=0.1)
    traces = Traces()
    add_cell_entries(traces, points["cell"])
    add_key_entries(traces, symbols, "marker")
    for (cell, label), line in points.groupby([points["cell"], labels], sort=True):
        line = line.groupby("bits", as_index=False)[list(ERRORS)].median()  # one value per bit width
        for col, column in enumerate(ERRORS, start=1):
            traces.add(go.Scatter(
                x=line["bits"], y=line[column], mode="lines+markers" if len(line) > 1 else "markers",
                name=f"{cell} {label}".strip(), legendgroup=cell, showlegend=False,
                line={"color": colour(cell)}, marker={"color": colour(cell), "symbol": symbols[label],
                                                      "size": 9},
                hovertemplate=f"{cell} {label}<br>%{{x:.0f}} bits<br>%{{y:.2e}}<extra></extra>"), 1, col)
    traces.into(fig)
    bits = sorted(points["bits"].unique())
    fig.update_xaxes(title_text="bit width", tickvals=bits, ticktext=[f"{b:.0f}" for b in bits])
    for col, column in enumerate(ERRORS, start=1):
        log_axis(fig, "y", points[column], 1, col, scientific=True)
    fig.update_layout(title=title, template=TEMPLATE, height=400)
    return legend_below(fig, points["cell"].nunique() + len(symbols))
