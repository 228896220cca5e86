"""The dashboard's charts: pure functions ``DataFrame -> plotly Figure`` of the stored rows.

The Streamlit page and ``rnnbench report`` show the same list, :data:`CHARTS`, in
this order (the page in tabs, :data:`TABS`). Each function accepts any selection of
rows, including an empty one, and answers missing data with an empty figure that says
what is missing; ``has_data`` tells the page whether the loaded results hold data for
the chart at all, so it can say "filtered out" rather than "never run".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from dashboard.charts.accuracy import accuracy_by_backend, accuracy_vs_cost, training_curves
from dashboard.charts.common import is_empty
from dashboard.charts.cost_model import OP_COLUMNS, cost_model_chart
from dashboard.charts.encrypted import (
    accuracy_vs_depth,
    encrypted_accuracy_points,
    encrypted_chart,
    encrypted_points,
)
from dashboard.charts.failures import failures, failures_table
from dashboard.charts.integer import integer_error_chart
from dashboard.charts.speedup import speedup_chart, speedups
from dashboard.charts.timing import sample_boxes, time_vs_hidden, time_vs_seq_len


def _kind(rows: pd.DataFrame) -> pd.Series:
    return rows["kind"].fillna("timing")


def _timed(rows: pd.DataFrame) -> bool:
    return bool(((_kind(rows) == "timing") & (rows["status"] == "ok")).any())


@dataclass(frozen=True)
class Chart:
    key: str  # stable: widget keys, file names, the report's element ids
    title: str
    build: Callable[[pd.DataFrame], go.Figure]
    about: str  # one line under the title: how to read it
    tab: str  # the page's tab that holds it
    has_data: Callable[[pd.DataFrame], bool] = _timed  # cheap: are there rows of its kind at all?


CHARTS: list[Chart] = [
    Chart("time_vs_hidden", "Time vs hidden size", time_vs_hidden,
          "Median time per step, log-log; band or bar: the inter-quartile range. Colour: cell; marker: "
          "configuration. Dotted guide: ∝ H (elementwise-bound); dashed: ∝ H² (matrix-product-bound).",
          "Time"),
    Chart("time_vs_seq_len", "Time vs sequence length", time_vs_seq_len,
          "Median time per step (buttons: per sequence); one panel per backend (and batch size, "
          "machine).", "Time"),
    Chart("speedup", "Speedup of reluadd", speedup_chart,
          "Baseline time / reluadd time; above 1 reluadd is faster. Bars: 50% interval of the ratio. "
          "Red dashed: the paper's claim for that kind of backend (2x float/integer, 1.5x encrypted; "
          "3-6x TFHE in its 2026 version).",
          "Speedup", lambda rows: not speedups(rows).empty),
    Chart("cost_model", "Cost model vs measured", cost_model_chart,
          "Operation counts of the deterministic cost model next to the measured time, both "
          "relative to GRU, for one configuration of the selection (hover for values).", "Cost model",
          lambda rows: _timed(rows) and rows[list(OP_COLUMNS)].notna().any().any()),
    Chart("encrypted", "Encrypted backends", encrypted_chart,
          "Seconds per step, where a sequence's time goes (key generation, encryption, evaluation, "
          "refresh: CKKS decrypts and re-encrypts on the client, SEAL has no bootstrapping; decryption), "
          "depth or programmable bootstraps per step, and traffic; CKKS and TFHE alike.",
          "Encrypted", lambda rows: not encrypted_points(rows).empty),
    Chart("accuracy_vs_depth", "Encrypted accuracy against depth", accuracy_vs_depth,
          "Task metric of each encrypted setting against the multiplicative depth per step it took "
          "(CKKS) or its activation bit width (TFHE); dotted: the same model in float.", "Encrypted",
          lambda rows: not encrypted_accuracy_points(rows).empty),
    Chart("integer_error", "Integer error vs bit width", integer_error_chart,
          "Error of the integer backends against the float reference module (log scale).", "Integer",
          lambda rows: rows["backend"].astype(str).str.fullmatch(r"int\d+").any()),
    Chart("accuracy_by_backend", "Accuracy per cell and backend", accuracy_by_backend,
          "Every accuracy row: its difference from float on the same task, cell, H and evaluation "
          "set (n); rows without a float reference below with their own value.", "Accuracy",
          lambda rows: (_kind(rows) == "accuracy").any()),
    Chart("accuracy_vs_cost", "Accuracy vs cost", accuracy_vs_cost,
          "Task metric against measured µs per step; rows never timed in their own lane at the cost "
          "model's operations per step. Dashed: the Pareto front.", "Accuracy",
          lambda rows: (_kind(rows) == "accuracy").any()),
    Chart("training_curves", "Training curves", training_curves, "Task metric during training.",
          "Training", lambda rows: (_kind(rows) == "train_curve").any()),
    Chart("samples", "Raw samples", sample_boxes,
          "Every timed sample (warm-up excluded): the noise behind each median.", "Samples"),
    Chart("failures", "Failed, timed-out and skipped points", failures_table,
          "Points without samples, with the reason recorded for each.", "Failures",
          lambda rows: (rows["status"].fillna("ok") != "ok").any()),
]

TABS: list[str] = list(dict.fromkeys(c.tab for c in CHARTS))

FILTERED_OUT = ("Filtered out: the loaded results hold data for this chart, but the current "
                "selection hides it. Widen the filters in the sidebar.")


def explain_empty(chart: Chart, figure: go.Figure, loaded: pd.DataFrame) -> go.Figure:
    """An empty figure says why: hidden by the filters when the loaded rows have its data,
    otherwise the chart's own message (never run)."""
    if not is_empty(figure) or chart.key == "failures":
        return figure
    figure = go.Figure(figure)
    message = figure.layout.annotations[0].text
    never = f"Never run: nothing of this kind in the loaded results. {message}"
    figure.layout.annotations[0].text = FILTERED_OUT if chart.has_data(loaded) else never
    return figure


__all__ = ["CHARTS", "TABS", "Chart", "explain_empty", "failures", "speedups"]
