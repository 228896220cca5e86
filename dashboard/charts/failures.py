"""Points that failed, timed out or were skipped: listed, never silently dropped."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.charts.common import TEMPLATE, empty_figure, format_params, ok_status

COLUMNS = {"status": "status", "cell": "cell", "backend": "backend", "backend_params": "params",
           "kind": "kind", "task": "task", "seq_len": "T", "hidden_size": "H", "batch_size": "B",
           "error_type": "error", "error_message": "message", "run_id": "run"}


def failures(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per point and run that did not succeed, with the reason recorded for it."""
    failed = rows[~ok_status(rows)].drop_duplicates(["point_id", "run_id", "kind"])
    table = failed[list(COLUMNS)].rename(columns=COLUMNS)
    table["params"] = table["params"].map(format_params)
    return table.sort_values(["status", "backend", "cell", "T", "H", "B"]).reset_index(drop=True)


def failures_table(rows: pd.DataFrame) -> go.Figure:
    """The failed, timed-out and skipped points as a table figure (for the report)."""
    title = "Failed, timed-out and skipped points"
    table = failures(rows)
    if table.empty:
        return empty_figure(title, "Every point in the selection ran successfully.")
    cells = [table[c].astype(object).where(table[c].notna(), "").astype(str) for c in table]
    fig = go.Figure(go.Table(
        columnwidth=[60, 55, 80, 60, 50, 50, 40, 40, 30, 80, 300, 80],
        header={"values": list(table.columns), "fill_color": "#eee", "align": "left"},
        cells={"values": cells, "align": "left", "height": 24}))
    fig.update_layout(title=f"{title} ({len(table)})", template=TEMPLATE,
                      height=min(900, 130 + 28 * (len(table) + 1)),
                      margin={"l": 10, "r": 10, "t": 60, "b": 10})
    return fig
