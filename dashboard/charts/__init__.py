"""The dashboard's charts: pure functions ``DataFrame -> plotly Figure`` of the stored rows.

The Streamlit page and ``rnnbench report`` show the same list, :data:`CHARTS`, in
this order. Each function accepts any selection of rows, including an empty one, and
answers missing data with an empty figure that says what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from dashboard.charts.accuracy import accuracy_vs_cost, training_curves
from dashboard.charts.ckks import ckks_chart
from dashboard.charts.cost_model import cost_model_chart
from dashboard.charts.failures import failures, failures_table
from dashboard.charts.integer import integer_error_chart
from dashboard.charts.speedup import speedup_chart, speedups
from dashboard.charts.timing import sample_boxes, time_vs_hidden, time_vs_seq_len


@dataclass(frozen=True)
class Chart:
    key: str  # stable: widget keys, file names, the report's element ids
    title: str
    build: Callable[[pd.DataFrame], go.Figure]
    about: str  # one line under the title: how to read it


CHARTS: list[Chart] = [
    Chart("time_vs_seq_len", "Time vs sequence length", time_vs_seq_len,
          "Median time per step and per sequence, log-log; bands are the inter-quartile range."),
    Chart("time_vs_hidden", "Time vs hidden size", time_vs_hidden,
          "Dotted guide: cost ∝ H (elementwise-bound); dashed: ∝ H² (matrix-product-bound)."),
    Chart("speedup", "Speedup of reluadd", speedup_chart,
          "Baseline time / reluadd time; above 1 reluadd is faster. Bars: 50% interval of the ratio. "
          "Red dashed lines are the paper's claims, for reference."),
    Chart("cost_model", "Cost model vs measured", cost_model_chart,
          "Operation counts of the deterministic cost model next to the measured time, both "
          "relative to GRU, for one configuration of the selection."),
    Chart("ckks", "CKKS depth, refreshes and traffic", ckks_chart,
          "Multiplicative depth per step, client refreshes (decrypt and re-encrypt: SEAL has no "
          "bootstrapping) and bytes per sequence."),
    Chart("integer_error", "Integer error vs bit width", integer_error_chart,
          "Error of the integer backends against the float reference module."),
    Chart("accuracy_vs_cost", "Accuracy vs cost", accuracy_vs_cost,
          "Task metric against the cost per step; the dashed line is the Pareto front."),
    Chart("training_curves", "Training curves", training_curves, "Task metric during training."),
    Chart("samples", "Raw samples", sample_boxes,
          "Every timed sample (warm-up excluded): the noise behind each median."),
    Chart("failures", "Failed, timed-out and skipped points", failures_table,
          "Points without samples, with the reason recorded for each."),
]

__all__ = ["CHARTS", "Chart", "failures", "speedups"]
