"""Integer-quantized execution: output error against the float reference vs bit width."""

from __future__ import annotations

import json
import re

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts.common import TEMPLATE, Traces, cell_series, empty_figure, point_table

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
    """Error vs bit width, one line per cell (and configuration), log error axis."""
    title = "Integer execution: error vs bit width"
    points = point_table(rows)
    if not points.empty:
        points = points.assign(bits=[bit_width(b, p) for b, p in
                                     zip(points["backend"], points["backend_params"], strict=True)])
        points = points.dropna(subset=["bits"])
    if points.empty:
        return empty_figure(title, "No integer-backend measurements in the selection (int8, int16, ...).")
    fig = make_subplots(rows=1, cols=len(ERRORS), subplot_titles=list(ERRORS.values()),
                        horizontal_spacing=0.1)
    traces = Traces()
    exclude = ["backend", "backend_params", "task", "seed"]
    for name, hex_colour, dash, line in cell_series(points, exclude=exclude):
        line = line.groupby("bits", as_index=False)[list(ERRORS)].median()  # one value per bit width
        for col, column in enumerate(ERRORS, start=1):
            traces.add(go.Scatter(
                x=line["bits"], y=line[column], mode="lines+markers", name=name, legendgroup=name,
                showlegend=traces.first(name), line={"color": hex_colour, "dash": dash},
                hovertemplate=f"{name}<br>%{{x:.0f}} bits<br>%{{y:.3g}}<extra></extra>"), 1, col)
    traces.into(fig)
    bits = sorted(points["bits"].unique())
    fig.update_xaxes(title_text="bit width", tickvals=bits, ticktext=[f"{b:.0f}" for b in bits])
    fig.update_yaxes(type="log")
    fig.update_layout(title=title, template=TEMPLATE, height=400)
    return fig
