"""What accuracy each cell and backend buys for its cost, and how training went."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts.common import (
    TEMPLATE,
    Traces,
    cell_series,
    colour,
    empty_figure,
    ok_status,
    point_table,
)
from dashboard.charts.cost_model import OP_COLUMNS
from rnnbench.results import queries

SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "star", "cross", "pentagon"]
_MATCH_KEYS = ["cell", "backend", "backend_params", "hidden_size"]


def higher_is_better(metric: str) -> bool:
    """Accuracy and agreement grow with quality; losses and errors shrink."""
    return not any(word in metric.lower() for word in ("loss", "mse", "err", "mae", "rmse"))


def pareto_front(frame: pd.DataFrame, cost: str, value: str, higher: bool) -> pd.DataFrame:
    """The points no other point beats on both cost (lower) and value, cheapest first."""
    ordered = frame.sort_values([cost, value], ascending=[True, not higher])
    gain = ordered[value] if higher else -ordered[value]
    return ordered[gain > gain.cummax().shift(fill_value=float("-inf"))]


def accuracy_with_cost(rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Accuracy rows with a cost column: measured µs/step of the same cell, backend and H if timed.

    The timing point chosen for an accuracy row prefers the same input size, then the
    smallest batch and the longest sequence. Without any such timing the cost is the
    cost model's operations per step. Returns ``(rows, cost axis title)``.
    """
    kind = rows["kind"].fillna("timing")
    accuracy = rows[(kind == "accuracy") & ok_status(rows)].dropna(subset=["metric", "metric_value"])
    accuracy = accuracy.reset_index(drop=True)
    timed = point_table(rows)
    if not accuracy.empty and not timed.empty:
        candidates = accuracy[_MATCH_KEYS + ["input_size"]].reset_index().merge(
            timed[_MATCH_KEYS + ["input_size", "batch_size", "seq_len", "median"]],
            on=_MATCH_KEYS, suffixes=("", "_timed"))
        if not candidates.empty:
            candidates["other_input"] = candidates["input_size"] != candidates["input_size_timed"]
            best = candidates.sort_values(["other_input", "batch_size", "seq_len"],
                                          ascending=[True, True, False]).drop_duplicates("index")
            accuracy["cost"] = accuracy.index.map(best.set_index("index")["median"] * 1e6)
            return accuracy.dropna(subset=["cost"]), "measured µs per step"
    accuracy = accuracy.dropna(subset=list(OP_COLUMNS))
    return accuracy.assign(cost=accuracy[list(OP_COLUMNS)].sum(axis=1)), "cost model: operations per step"


def accuracy_vs_cost(rows: pd.DataFrame) -> go.Figure:
    """Accuracy vs cost per task and metric, one marker per cell and backend, with the Pareto front."""
    title = "Accuracy vs cost (Pareto front dashed)"
    table, cost_title = accuracy_with_cost(rows)
    if table.empty:
        return empty_figure(title, "No accuracy results in the selection (run the tasks first).")
    panels = sorted(table.groupby(["task", "metric"]).groups)
    fig = make_subplots(rows=1, cols=len(panels), horizontal_spacing=0.08,
                        subplot_titles=[f"{task}: {metric}" for task, metric in panels])
    symbol_of = {b: SYMBOLS[i % len(SYMBOLS)] for i, b in enumerate(sorted(table["backend"].unique()))}
    traces = Traces()
    for col, (task, metric) in enumerate(panels, start=1):
        panel = table[(table["task"] == task) & (table["metric"] == metric)]
        for (cell, backend), group in panel.groupby(["cell", "backend"]):
            name = f"{cell} / {backend}"
            traces.add(go.Scatter(
                x=group["cost"], y=group["metric_value"], mode="markers", name=name, legendgroup=name,
                showlegend=traces.first(name),
                marker={"color": colour(cell), "symbol": symbol_of[backend], "size": 11},
                customdata=group[["hidden_size"]].to_numpy(),
                hovertemplate=(f"{name}<br>H=%{{customdata[0]}}<br>cost %{{x:.3g}}"
                               f"<br>{metric} %{{y:.4g}}<extra></extra>")), 1, col)
        front = pareto_front(panel, "cost", "metric_value", higher_is_better(metric))
        traces.add(go.Scatter(
            x=front["cost"], y=front["metric_value"], mode="lines", line={"color": "#444", "dash": "dash",
                                                                          "shape": "hv"},
            name="Pareto front", legendgroup="front", showlegend=traces.first("Pareto front"),
            hoverinfo="skip"), 1, col)
        fig.update_yaxes(title_text=metric, row=1, col=col)
    traces.into(fig)
    fig.update_xaxes(type="log", title_text=cost_title)
    fig.update_layout(title=title, template=TEMPLATE, height=420)
    return fig


def training_curves(rows: pd.DataFrame) -> go.Figure:
    """Metric vs training step per task and metric, one line per cell and configuration."""
    title = "Training curves"
    # A retrained model replaces the earlier one's curve.
    curves = queries.latest_runs(rows, "train_curve").dropna(subset=["train_step", "metric_value", "metric"])
    if curves.empty:
        return empty_figure(title, "No training curves in the selection (run rnnbench train first).")
    panels = sorted(curves.groupby(["task", "metric"]).groups)
    fig = make_subplots(rows=1, cols=len(panels), horizontal_spacing=0.08,
                        subplot_titles=[f"{task}: {metric}" for task, metric in panels])
    traces = Traces()
    for col, (task, metric) in enumerate(panels, start=1):
        panel = curves[(curves["task"] == task) & (curves["metric"] == metric)]
        for name, hex_colour, dash, line in cell_series(panel, ["task"], curves):
            line = line.sort_values("train_step")
            traces.add(go.Scatter(
                x=line["train_step"], y=line["metric_value"], mode="lines", name=name, legendgroup=name,
                showlegend=traces.first(name), line={"color": hex_colour, "dash": dash},
                hovertemplate=f"{name}<br>step %{{x}}<br>{metric} %{{y:.4g}}<extra></extra>"), 1, col)
        fig.update_yaxes(title_text=metric, row=1, col=col, type=None if higher_is_better(metric) else "log")
    traces.into(fig)
    fig.update_xaxes(title_text="training step")
    fig.update_layout(title=title, template=TEMPLATE, height=400)
    return fig
