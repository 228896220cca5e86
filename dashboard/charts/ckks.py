"""CKKS: multiplicative depth per step, refreshes and traffic per sequence."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts.common import TEMPLATE, Traces, cell_series, empty_figure, point_table


def ckks_chart(rows: pd.DataFrame) -> go.Figure:
    """Depth per step by cell, and refreshes and bytes exchanged per sequence vs T."""
    title = "CKKS: depth, refreshes and traffic"
    points = point_table(rows).dropna(subset=["ckks_depth_per_step"])
    if points.empty:
        return empty_figure(title, "No CKKS measurements in the selection (backend ckks not run yet).")
    points = points.assign(ckks_bytes=points["ckks_bytes_to_server"].fillna(0)
                           + points["ckks_bytes_to_client"].fillna(0))
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.08, subplot_titles=[
        "multiplicative depth per step", "refreshes per sequence", "bytes exchanged per sequence"])
    traces = Traces()
    for name, hex_colour, dash, line in cell_series(points, exclude=["seq_len", "task", "seed"]):
        line = line.sort_values("seq_len")
        style = {"legendgroup": name, "line": {"color": hex_colour, "dash": dash}, "mode": "lines+markers"}
        traces.add(go.Bar(x=[name], y=[line["ckks_depth_per_step"].max()], name=name,
                             legendgroup=name, showlegend=traces.first(name),
                             marker_color=hex_colour), 1, 1)
        traces.add(go.Scatter(x=line["seq_len"], y=line["ckks_refreshes"], name=name,
                                 showlegend=False, **style), 1, 2)
        traces.add(go.Scatter(
            x=line["seq_len"], y=line["ckks_bytes"], name=name, showlegend=False,
            customdata=line[["ckks_bytes_to_server", "ckks_bytes_to_client"]].to_numpy(),
            hovertemplate=(f"{name}<br>T=%{{x}}<br>%{{y:.3s}}B in all<br>to server %{{customdata[0]:.3s}}B"
                           "<br>to client %{customdata[1]:.3s}B<extra></extra>"), **style), 1, 3)
    traces.into(fig)
    fig.update_xaxes(title_text="sequence length T", type="log", col=2)
    fig.update_xaxes(title_text="sequence length T", type="log", col=3)
    fig.update_yaxes(title_text="levels", col=1)
    fig.update_yaxes(title_text="refreshes", col=2)
    fig.update_yaxes(title_text="bytes", type="log", col=3)
    fig.update_layout(title=title, template=TEMPLATE, height=400)
    return fig
