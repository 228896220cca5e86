"""The deterministic cost model (operation counts per step) next to the measured time."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts.common import TEMPLATE, empty_figure, legend_below, point_table, varying_params

OP_COLUMNS = {"ops_weight_mul": "× weight", "ops_data_mul": "× data", "ops_add": "+ add",
              "ops_nonlin": "nonlinearity"}
OP_COLOURS = {"ops_weight_mul": "#4c72b0", "ops_data_mul": "#c44e52", "ops_add": "#8c8c8c",
              "ops_nonlin": "#dd8452"}


def cost_model_chart(rows: pd.DataFrame) -> go.Figure:
    """Left: operations per step by kind; right: model and measured cost relative to GRU.

    One configuration is shown (the largest hidden size, longest sequence, smallest batch
    and fewest threads in the selection; the filters choose another), so model and
    measurement describe the same work; each backend setting is its own series.
    """
    title = "Cost model vs measured time"
    points = point_table(rows).dropna(subset=list(OP_COLUMNS))
    if points.empty:
        return empty_figure(title, "No timed points with cost-model counts in the selection.")
    hidden, input_size = points["hidden_size"].max(), points["input_size"].max()
    points = points[(points["hidden_size"] == hidden) & (points["input_size"] == input_size)]
    points = points[points["seq_len"] == points["seq_len"].max()]
    points = points[points["batch_size"] == points["batch_size"].min()]
    points = points[points["threads"] == points["threads"].min()]
    seq_len, batch = points["seq_len"].iloc[0], points["batch_size"].iloc[0]

    cells = sorted(points["cell"].unique())
    ops = points.drop_duplicates("cell").set_index("cell").loc[cells, list(OP_COLUMNS)]
    reference = "gru" if "gru" in cells else cells[0]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=[
        f"cost model: operations per step (H={hidden}, I={input_size})",
        f"relative to {reference} (T={seq_len}, B={batch})"])
    below = ops.cumsum(axis=1) - ops  # stacked by hand: the right panel's bars are grouped
    for column, label in OP_COLUMNS.items():
        fig.add_trace(go.Bar(x=cells, y=ops[column], base=below[column], offsetgroup="ops", name=label,
                             marker_color=OP_COLOURS[column], legendgroup="ops",
                             legendgrouptitle_text="operations"), row=1, col=1)
    total = ops.sum(axis=1)
    # No bar labels: with a dozen backends they cannot fit; the hover gives each value.
    hover = "%{x}: %{y:.2f} x " + reference + "<extra>%{fullData.name}</extra>"
    fig.add_trace(go.Bar(x=cells, y=total / total[reference], name="cost model (all ops)",
                         marker_color="#555", legendgroup="rel", legendgrouptitle_text="relative cost",
                         hovertemplate=hover), row=1, col=2)
    several = points["machine"].nunique() > 1
    # One bar series per backend setting (TFHE's literal and packed forms, say) and machine.
    points = points.assign(variant=varying_params(points))
    for (backend, variant, machine), group in points.groupby(["backend", "variant", "machine_name"]):
        median = group.set_index("cell")["median"]
        if reference not in median:
            continue
        relative = median.reindex(cells) / median[reference]
        name = " ".join(filter(None, [f"measured: {backend}", variant]))
        name += f" · {machine}" if several else ""
        fig.add_trace(go.Bar(x=cells, y=relative, name=name, legendgroup="rel", hovertemplate=hover),
                      row=1, col=2)
    fig.add_hline(y=1.0, line={"color": "black", "width": 1}, row=1, col=2)
    fig.update_yaxes(title_text="operations per step", row=1, col=1)
    fig.update_yaxes(title_text=f"cost / {reference}", row=1, col=2)
    fig.update_layout(title=title, template=TEMPLATE, barmode="group", height=420)
    return legend_below(fig, len(OP_COLUMNS) + 1 + points[["backend", "machine"]].drop_duplicates().shape[0])
