"""Encrypted backends (CKKS, TFHE): seconds per step, where a run's time goes, depth and traffic;
and what accuracy each setting keeps against the depth (CKKS) or bit width (TFHE) it costs.

Generic over the backends' stored columns: ``<prefix>_<phase>_s`` for the phases a
backend records (keygen, encrypt, eval or evaluate, refresh, decrypt), depth or PBS
per step, bytes exchanged. A backend without a column simply has no bar for it.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts.accuracy import accuracy_points
from dashboard.charts.common import (
    TEMPLATE,
    Traces,
    add_cell_entries,
    add_key_entries,
    colour,
    empty_figure,
    legend_below,
    model_name,
    point_table,
    series_labels,
    series_sort_key,
    symbol_map,
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
    # Many points turn the category labels vertical (a folder of ckks-compare and tfhe-compare has
    # 60): room for them under each row of panels, so the bars keep their height.
    labels_px = 6 * int(points["label"].str.len().max()) if len(points) > 12 else 60
    height = 2 * 240 + 2 * labels_px + 160
    fig = make_subplots(rows=2, cols=2, horizontal_spacing=0.1, vertical_spacing=(labels_px + 60) / height,
                        subplot_titles=[
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
    fig.update_layout(title=title, template=TEMPLATE, height=height)
    return legend_below(fig, points["cell"].nunique() + len(PHASE_COLOURS))


# What an accuracy row of each encrypted backend is plotted against: the knob that sets its cost.
ACCURACY_AXES = {"ckks": ("ckks_depth_per_step", "multiplicative depth per step"),
                 "tfhe": ("tfhe_act_bits", "activation bits")}


def encrypted_accuracy_points(rows: pd.DataFrame) -> pd.DataFrame:
    """Accuracy rows of encrypted backends that say their depth or bit width, with ``x`` set to it,
    ``float_value`` (float on the same task, cell, model and items) and a ``series`` label."""
    table = accuracy_points(rows)
    table = table[table["backend"].isin(list(ACCURACY_AXES))]
    x = pd.Series(float("nan"), index=table.index)
    for backend, (column, _) in ACCURACY_AXES.items():
        if column in table:
            x = x.where(table["backend"] != backend, table[column])
    table = table.assign(x=x).dropna(subset=["x"])
    model = table["model_activations"].map(model_name).replace("", "as trained").astype(str)
    hidden = table["hidden_size"].map(lambda h: f"H={h}") if table["hidden_size"].nunique() > 1 else ""
    # An encrypted sample of a few items beside the whole set in simulation: its own series.
    varies = table.groupby("backend")["n_eval"].transform("nunique") > 1
    items = table["n_eval"].map(lambda n: f"n={int(n)}").where(varies, "").astype(str)
    series = (model + " " + hidden + " " + items).str.strip().str.replace(r"\s+", " ", regex=True)
    return table.assign(series=series).reset_index(drop=True)


def accuracy_vs_depth(rows: pd.DataFrame) -> go.Figure:
    """Encrypted accuracy against the depth (CKKS) or bit width (TFHE) it took, one panel per
    backend and task; each cell's float accuracy as a dotted line of its colour."""
    title = "Encrypted accuracy against depth (CKKS) and bit width (TFHE)"
    table = encrypted_accuracy_points(rows)
    if table.empty:
        return empty_figure(title, "No CKKS or TFHE accuracy rows in the selection "
                                   "(`rnnbench sweep --task digits --backends float,ckks`).")
    keys = ["backend", "task", "metric"] + (["machine_name"] if table["machine"].nunique() > 1 else [])
    panels = sorted(table.groupby(keys).groups)
    fig = make_subplots(rows=1, cols=len(panels), horizontal_spacing=0.1,
                        subplot_titles=[" · ".join(map(str, p)) for p in panels])
    symbols = symbol_map(table["series"])
    traces = Traces()
    add_cell_entries(traces, table["cell"])
    add_key_entries(traces, {s: m for s, m in symbols.items() if len(symbols) > 1}, "model")
    for col, key in enumerate(panels, start=1):
        panel = table[(table[keys] == list(key)).all(axis=1)]
        for (cell, series), line in panel.groupby(["cell", "series"]):
            line = line.sort_values("x")
            traces.add(go.Scatter(
                x=line["x"], y=line["metric_value"], mode="lines+markers", name=f"{cell} {series}",
                legendgroup=cell, showlegend=False, line={"color": colour(cell), "width": 1.5},
                marker={"color": colour(cell), "symbol": symbols[series], "size": 10},
                customdata=line[["float_value", "vs_float", "params", "n_eval", "run_id"]].to_numpy(),
                hovertemplate=(f"{cell} · {series}<br>{ACCURACY_AXES[key[0]][1]} %{{x}}<br>{key[2]} "
                               "%{y:.4g} (float %{customdata[0]:.4g}, %{customdata[1]:+.4f})"
                               "<br>%{customdata[2]}<br>n=%{customdata[3]} · run %{customdata[4]}"
                               "<extra></extra>")), 1, col)
        for (cell, series), floats in panel.dropna(subset=["float_value"]).groupby(["cell", "series"]):
            span = [panel["x"].min() - 0.5, panel["x"].max() + 0.5]
            traces.add(go.Scatter(
                x=span, y=[floats["float_value"].iloc[0]] * 2, mode="lines", legendgroup=cell,
                showlegend=False, line={"color": colour(cell), "dash": "dot", "width": 1},
                hovertemplate=f"{cell} · {series}: float %{{y:.4g}}<extra></extra>"), 1, col)
        fig.update_xaxes(title_text=ACCURACY_AXES[key[0]][1], dtick=1 if key[0] == "tfhe" else None,
                         row=1, col=col)
        fig.update_yaxes(title_text=key[2], row=1, col=col)
    traces.into(fig)
    fig.update_layout(title=title, template=TEMPLATE, height=420)
    return legend_below(fig, table["cell"].nunique() + len(symbols))
