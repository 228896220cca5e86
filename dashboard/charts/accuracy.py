"""What accuracy each cell and backend reaches, what it costs, and how training went."""

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
    log_axis,
    machine_names,
    model_name,
    ok_status,
    point_table,
    series_labels,
    series_sort_key,
    symbol_map,
    varying_params,
)
from dashboard.charts.cost_model import OP_COLUMNS
from rnnbench.results import queries

_MATCH_KEYS = ["cell", "backend", "backend_params", "hidden_size", "machine"]
# A backend's accuracy is compared with float on the same task, cell, model and evaluation set.
_REFERENCE_KEYS = ["task", "model_activations", "metric", "cell", "hidden_size", "input_size", "seq_len",
                   "seed", "n_eval", "machine"]
NO_ACCURACY = "No accuracy results in the selection."


def higher_is_better(metric: str) -> bool:
    """Accuracy and agreement grow with quality; losses and errors shrink."""
    return not any(word in metric.lower() for word in ("loss", "mse", "err", "mae", "rmse"))


def pareto_front(frame: pd.DataFrame, cost: str, value: str, higher: bool) -> pd.DataFrame:
    """The points no other point beats on both cost (lower) and value, cheapest first."""
    ordered = frame.sort_values([cost, value], ascending=[True, not higher])
    gain = ordered[value] if higher else -ordered[value]
    return ordered[gain > gain.cummax().shift(fill_value=float("-inf"))]


def accuracy_points(rows: pd.DataFrame) -> pd.DataFrame:
    """Every successful accuracy point, its latest run per machine, with ``float_value``
    (float's value of the same task, cell, model and evaluation set) and ``vs_float``."""
    accuracy = queries.latest_runs(rows, "accuracy")
    accuracy = accuracy[ok_status(accuracy)].dropna(subset=["metric", "metric_value"]).reset_index(drop=True)
    accuracy["machine_name"] = machine_names(accuracy)
    floats = accuracy[accuracy["backend"] == "float"].drop_duplicates(_REFERENCE_KEYS, keep="last")
    reference = floats.set_index(_REFERENCE_KEYS)["metric_value"]
    keys = pd.MultiIndex.from_frame(accuracy[_REFERENCE_KEYS])
    accuracy["float_value"] = reference.reindex(keys).to_numpy() if len(accuracy) else []
    accuracy["vs_float"] = accuracy["metric_value"] - accuracy["float_value"]
    accuracy["params"] = varying_params(accuracy) if len(accuracy) else []
    return accuracy


def model_labels(table: pd.DataFrame) -> pd.Series:
    """``<br>(ckks-aware model)`` for rows of fine-tuned models, empty for models as trained."""
    return table["model_activations"].map(model_name).map(lambda name: f"<br>({name})" if name else "")


def _panels(table: pd.DataFrame) -> list[tuple]:
    """One panel per task and metric (and machine, when there are several)."""
    keys = ["task", "metric"] + (["machine_name"] if table["machine"].nunique() > 1 else [])
    return sorted(table.groupby(keys).groups)


def accuracy_by_backend(rows: pd.DataFrame) -> go.Figure:
    """Each backend's accuracy as the difference from float, per cell; H and n_eval on the axis.

    Every accuracy row is a bar: rows without a float reference are drawn in a second row
    of panels with their own value, so none is left out.
    """
    title = "Accuracy per cell and backend: difference from float"
    table = accuracy_points(rows)
    if table.empty:
        return empty_figure(title, NO_ACCURACY + " Run `rnnbench sweep --task digits` first.")
    table = table.assign(x=[
        f"{b}{' ' + p if p else ''}{model}<br>H={h}" + (f" · n={n:g}" if pd.notna(n) else "")
        for b, p, model, h, n in zip(table["backend"], table["params"].str.replace(" ", "<br>"),
                                     model_labels(table), table["hidden_size"], table["n_eval"],
                                     strict=True)])
    panels = _panels(table)
    orphans = table["float_value"].isna()
    rows_n = 2 if orphans.any() else 1
    titles = [": ".join(map(str, p)) + " (vs float)" for p in panels]
    if rows_n == 2:
        titles += [": ".join(map(str, p)) + " (no float reference: value)" for p in panels]
    fig = make_subplots(rows=rows_n, cols=len(panels), subplot_titles=titles, vertical_spacing=0.28,
                        horizontal_spacing=0.08)
    traces = Traces()
    add_cell_entries(traces, table["cell"])
    for col, key in enumerate(panels, start=1):
        panel = table[(table[["task", "metric", "machine_name"][:len(key)]] == list(key)).all(axis=1)]
        order = sorted(panel["x"].unique(), key=lambda x: (0 if x.startswith("float") else 1,
                                                           series_sort_key(x)))
        for row, part, value in ((1, panel[panel["float_value"].notna()], "vs_float"),
                                 (2, panel[panel["float_value"].isna()], "metric_value")):
            if row > rows_n:
                continue
            for cell, group in part.groupby("cell"):
                traces.add(go.Bar(
                    x=group["x"], y=group[value], name=cell, legendgroup=cell, showlegend=False,
                    offsetgroup=cell, marker_color=colour(cell),
                    customdata=group[["metric_value", "float_value", "n_eval", "hidden_size",
                                      "backend_params", "run_id", "machine_name"]].to_numpy(),
                    hovertemplate=(f"{cell} · %{{x}}<br>{key[1]} %{{customdata[0]:.4g}} "
                                   "(float %{customdata[1]:.4g})<br>difference %{y:+.4f}<br>"
                                   "n_eval=%{customdata[2]} · H=%{customdata[3]}<br>%{customdata[4]}"
                                   "<br>run %{customdata[5]} · %{customdata[6]}<extra></extra>")),
                    row, col)
            fig.update_xaxes(type="category", categoryorder="array", categoryarray=order, row=row, col=col)
        fig.update_yaxes(title_text=f"{key[1]} − float", zeroline=True, zerolinecolor="#444", row=1, col=col)
    traces.into(fig)
    fig.update_layout(title=title, template=TEMPLATE, barmode="group", height=460 + 320 * (rows_n - 1))
    return legend_below(fig, table["cell"].nunique())


def accuracy_with_cost(rows: pd.DataFrame) -> pd.DataFrame:
    """Accuracy rows with ``cost_us``, the measured µs/step of the same cell, backend, parameters,
    H and machine where one was timed (NaN otherwise), and ``ops``, the cost model's
    operations per step, which every row has.

    The timing point chosen for an accuracy row prefers the same input size, then the
    smallest batch and the longest sequence.
    """
    accuracy = accuracy_points(rows)
    accuracy["ops"] = accuracy.reindex(columns=list(OP_COLUMNS)).sum(axis=1, min_count=1)
    accuracy["cost_us"] = float("nan")
    timed = point_table(rows)
    if accuracy.empty or timed.empty:
        return accuracy
    candidates = accuracy[_MATCH_KEYS + ["input_size"]].reset_index().merge(
        timed[_MATCH_KEYS + ["input_size", "batch_size", "seq_len", "median"]],
        on=_MATCH_KEYS, suffixes=("", "_timed"))
    if not candidates.empty:
        candidates["other_input"] = candidates["input_size"] != candidates["input_size_timed"]
        best = candidates.sort_values(["other_input", "batch_size", "seq_len"],
                                      ascending=[True, True, False]).drop_duplicates("index")
        accuracy["cost_us"] = accuracy.index.map(best.set_index("index")["median"] * 1e6)
    return accuracy


def accuracy_vs_cost(rows: pd.DataFrame) -> go.Figure:
    """Accuracy vs measured cost per task and metric, with the Pareto front; rows never timed sit
    in a marked lane at their cost-model operation count, so every row is on the chart."""
    title = "Accuracy vs cost (Pareto front dashed)"
    table = accuracy_with_cost(rows)
    if table.empty:
        return empty_figure(title, NO_ACCURACY + " Run `rnnbench sweep --task digits` first.")
    untimed = table["cost_us"].isna()
    panels = _panels(table)
    lanes = [lane for lane, present in (("timed", (~untimed).any()), ("untimed", untimed.any())) if present]
    subtitles = [f"{': '.join(map(str, p))}" + (" — measured" if lane == "timed" else
                                               f" — {int(untimed.sum())} rows without timing")
                 for p in panels for lane in lanes]
    fig = make_subplots(rows=1, cols=len(panels) * len(lanes), subplot_titles=subtitles,
                        horizontal_spacing=0.07)
    table = table.assign(config=series_labels(table, exclude=["cell", "task", "seed", "machine"]))
    symbols = symbol_map(table["backend"] + table["params"].map(lambda p: f" {p}" if p else ""))
    traces = Traces()
    add_cell_entries(traces, table["cell"])
    for label, symbol in symbols.items():
        traces.add(go.Scatter(x=[None], y=[None], mode="markers", name=label, legendgroup=f"key-{label}",
                              legendgrouptitle_text="backend" if symbol == "circle" else None,
                              marker={"symbol": symbol, "color": "#777", "size": 10}, hoverinfo="skip"))
    col = 0
    for key in panels:
        panel = table[(table[["task", "metric", "machine_name"][:len(key)]] == list(key)).all(axis=1)]
        metric = key[1]
        for lane in lanes:
            col += 1
            part = panel[panel["cost_us"].isna() == (lane == "untimed")]
            x = "cost_us" if lane == "timed" else "ops"
            for cell, group in part.groupby("cell"):
                backend_label = group["backend"] + group["params"].map(lambda p: f" {p}" if p else "")
                traces.add(go.Scatter(
                    x=group[x], y=group["metric_value"], mode="markers", name=cell, legendgroup=cell,
                    showlegend=False, marker={"color": colour(cell), "size": 11, "opacity": 0.85,
                                              "symbol": [symbols[b] for b in backend_label],
                                              "line": {"width": 1, "color": "white"}},
                    customdata=pd.concat([backend_label, group[["hidden_size", "n_eval"]]], axis=1)
                    .to_numpy(),
                    hovertemplate=(f"{cell} · %{{customdata[0]}}<br>H=%{{customdata[1]}} · "
                                   f"n_eval=%{{customdata[2]}}<br>{x.replace('cost_us', 'µs/step')} "
                                   f"%{{x:.3g}}<br>{metric} %{{y:.4g}}<extra></extra>")), 1, col)
            if lane == "timed":
                front = pareto_front(part, x, "metric_value", higher_is_better(metric))
                traces.add(go.Scatter(
                    x=front[x], y=front["metric_value"], mode="lines",
                    line={"color": "#444", "dash": "dash", "shape": "hv"}, name="Pareto front",
                    legendgroup="front", showlegend=traces.first("Pareto front"), hoverinfo="skip"), 1, col)
            log_axis(fig, "x", part[x], 1, col,
                     title_text="measured µs per step" if lane == "timed" else "cost model: ops per step")
            fig.update_yaxes(title_text=metric, row=1, col=col)
    traces.into(fig)
    fig.update_layout(title=title, template=TEMPLATE, height=440)
    return legend_below(fig, table["cell"].nunique() + len(symbols) + 1)


def training_curves(rows: pd.DataFrame) -> go.Figure:
    """Metric vs training step per task and metric, colour per cell, one line per configuration."""
    title = "Training curves"
    # A retrained model replaces the older curve; another machine's curve stays beside it.
    curves = queries.latest_runs(rows, "train_curve").dropna(subset=["train_step", "metric_value", "metric"])
    if curves.empty:
        return empty_figure(title, "No training curves in the selection (run rnnbench train first).")
    panels = sorted(curves.groupby(["task", "metric"]).groups)
    fig = make_subplots(rows=1, cols=len(panels), horizontal_spacing=0.08,
                        subplot_titles=[f"{task}: {metric}" for task, metric in panels])
    labels = series_labels(curves, exclude=["cell", "task", "backend"])
    if curves["machine"].nunique() > 1:
        labels = (labels + " · " + machine_names(curves)).str.strip(" ·")
    dashes = dict(zip(sorted(labels.unique(), key=series_sort_key),
                      ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"] * 4, strict=False))
    traces = Traces()
    add_cell_entries(traces, curves["cell"])
    for label, dash in dashes.items():
        if label:
            traces.add(go.Scatter(x=[None], y=[None], mode="lines", name=label, legendgroup=f"key-{label}",
                                  line={"color": "#777", "dash": dash}, hoverinfo="skip"))
    for col, (task, metric) in enumerate(panels, start=1):
        panel = curves[(curves["task"] == task) & (curves["metric"] == metric)]
        for (cell, label), line in panel.groupby([panel["cell"], labels[panel.index]]):
            line = line.sort_values("train_step")
            name = f"{cell} {label}".strip()
            traces.add(go.Scatter(
                x=line["train_step"], y=line["metric_value"], mode="lines", name=name, legendgroup=cell,
                showlegend=False, line={"color": colour(cell), "dash": dashes[label]},
                hovertemplate=f"{name}<br>step %{{x}}<br>{metric} %{{y:.4g}}<extra></extra>"), 1, col)
        if higher_is_better(metric):
            fig.update_yaxes(title_text=metric, row=1, col=col)
        else:
            log_axis(fig, "y", panel["metric_value"], 1, col, scientific=True, title_text=metric)
    traces.into(fig)
    fig.update_xaxes(title_text="training step")
    fig.update_layout(title=title, template=TEMPLATE, height=400)
    return legend_below(fig, curves["cell"].nunique() + len(dashes))
