"""Encrypted backends (CKKS, TFHE): seconds per step, where a run's time goes, depth and traffic.

Generic over the backends' stored columns: ``<prefix>_<phase>_s`` for the phases a
backend records (keygen, encrypt, eval or evaluate, refresh, decrypt), depth or PBS
per step, bytes exchanged. A backend without a column simply has no bar for it.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts.common import (
    TEMPLATE,
    Traces,
    add_cell_entries,
    colour,
    empty_figure,
    legend_below,
    point_table,
    series_labels,
    series_sort_key,
)

PREFIXES = ("ckks", "tfhe")
PHASES = {"keygen": "key generation", "encrypt": "encrypt", "eval": "evaluate", "evaluate": "evaluate",
          "refresh": "refresh", "decrypt": "decrypt"}
PHASE_COLOURS = {"key generation": "#8c564b", "encrypt": "#9467bd", "evaluate": "#4c72b0",
                 "refresh": "#dd8452", "decrypt": "#7f7f7f"}
# Per step: the depth a CKKS step consumes, the programmable bootstraps a TFHE step runs.
PER_STEP = {"ckks_depth_per_step": "CKKS multiplicative depth", "tfhe_pbs_per_step": "TFHE PBS"}


def _present(rows: pd.DataFrame, column: str) -> bool:
    return column in rows and rows[column].notna().any()


def encrypted_points(rows: pd.DataFrame) -> pd.DataFrame:
    """The timed points of encrypted backends: those with any ``ckks_*``/``tfhe_*`` fact."""
    points = point_table(rows)
    facts = [c for c in points.columns if c.startswith(tuple(f"{p}_" for p in PREFIXES))]
    if points.empty or not facts:
        return points.iloc[0:0]
    return points[points[facts].notna().any(axis=1)].reset_index(drop=True)


def encrypted_chart(rows: pd.DataFrame) -> go.Figure:
    """Four panels per encrypted point: s/step, a sequence's phases, depth or PBS per step, traffic."""
    title = "Encrypted backends: time per step, phases, depth and traffic"
    points = encrypted_points(rows)
    if points.empty:
        return empty_figure(title, "No encrypted (CKKS or TFHE) measurements in the selection.")
    labels = series_labels(points, exclude=["cell", "backend", "task", "seed", "machine"])
    several = points["machine"].nunique() > 1
    points = points.assign(label=[
        " · ".join(filter(None, [cell, backend, label, machine if several else ""]))
        for cell, backend, label, machine in zip(points["cell"], points["backend"], labels,
                                                 points["machine_name"], strict=True)])
    points = points.sort_values("label", key=lambda s: s.map(series_sort_key))
    fig = make_subplots(rows=2, cols=2, horizontal_spacing=0.1, vertical_spacing=0.2, subplot_titles=[
        "seconds per step (median; bar: IQR)", "one sequence: where the time goes (s)",
        "per step: " + " / ".join(v for c, v in PER_STEP.items() if _present(points, c)),
        "bytes exchanged per sequence"])
    traces = Traces()
    add_cell_entries(traces, points["cell"])
    x = points["label"].to_numpy()
    cells = points["cell"].to_numpy()
    traces.add(go.Bar(
        x=x, y=points["median"], marker_color=[colour(c) for c in cells], showlegend=False,
        error_y={"type": "data", "symmetric": False, "array": points["q3"] - points["median"],
                 "arrayminus": points["median"] - points["q1"]},
        customdata=points[["q1", "q3", "n", "run_id", "machine_name"]].to_numpy(),
        hovertemplate=("%{x}<br>median %{y:.3g} s/step<br>IQR %{customdata[0]:.3g}–%{customdata[1]:.3g}"
                       "<br>n=%{customdata[2]}<br>run %{customdata[3]} · %{customdata[4]}<extra></extra>")),
        1, 1)
    for phase, name in PHASES.items():
        values = sum(points[f"{p}_{phase}_s"].fillna(0) for p in PREFIXES if f"{p}_{phase}_s" in points)
        if isinstance(values, int) or not values.any():
            continue
        traces.add(go.Bar(x=x, y=values, name=name, legendgroup=f"phase-{name}",
                          legendgrouptitle_text="phase" if phase == "keygen" else None,
                          showlegend=traces.first(f"phase {name}"), marker_color=PHASE_COLOURS[name],
                          hovertemplate=f"%{{x}}<br>{name}: %{{y:.3g}} s<extra></extra>"), 1, 2)
    for column, name in PER_STEP.items():
        if _present(points, column):
            traces.add(go.Bar(x=x, y=points[column], marker_color=[colour(c) for c in cells],
                              showlegend=False, hovertemplate=f"%{{x}}<br>{name}: %{{y}}<extra></extra>"),
                       2, 1)
    traffic = [c for c in points.columns if c.endswith(("_bytes_to_server", "_bytes_to_client"))
               and c.startswith(PREFIXES)]
    if traffic:
        total = points[traffic].fillna(0).sum(axis=1)
        traces.add(go.Bar(x=x, y=total, marker_color=[colour(c) for c in cells], showlegend=False,
                          hovertemplate="%{x}<br>%{y:.3s}B per sequence<extra></extra>"), 2, 2)
    traces.into(fig)
    fig.update_layout(barmode="stack")
    fig.update_xaxes(type="category")  # the legend-only entries would otherwise make it numeric
    # Linear axes from zero: bar lengths are read as amounts.
    fig.update_yaxes(title_text="s per step", row=1, col=1)
    fig.update_yaxes(title_text="s per sequence (T steps)", row=1, col=2)
    fig.update_yaxes(title_text="count", row=2, col=1)
    fig.update_yaxes(title_text="bytes", tickformat="~s", row=2, col=2)
    fig.update_layout(title=title, template=TEMPLATE, height=640)
    return legend_below(fig, points["cell"].nunique() + len(PHASE_COLOURS))
