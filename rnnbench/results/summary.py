"""The summary tables of a sweep: median time per step, IQR and the ratio to GRU; accuracy per point."""

from __future__ import annotations

import pandas as pd

from rnnbench.results import stats
from rnnbench.results.queries import MACHINE, PEER_KEYS, POINT_KEYS, latest_points, latest_runs, markdown


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per point and machine (newest run wins), failed and skipped points kept as lines.

    ``vs_gru`` divides a point's median by GRU's on the same backend, configuration and
    machine; ``machine`` says which machine measured the line.
    """
    latest, ok = latest_points(rows)
    grouped = ok.groupby(["point_id", MACHINE])["time_per_step_s"]
    table = latest[[*POINT_KEYS, "point_id", MACHINE, "cpu_model", "status", "error_message"]].copy()
    table["task"] = table["task"].fillna("")  # a usable index key for timing-only points
    key = pd.MultiIndex.from_frame(table[["point_id", MACHINE]])
    table["samples"] = grouped.size().reindex(key).fillna(0).astype(int).to_numpy()
    table["median_us"] = (grouped.median() * 1e6).reindex(key).to_numpy()
    table["iqr_us"] = (grouped.agg(stats.iqr) * 1e6).reindex(key).to_numpy()
    gru = table[table["cell"] == "gru"].set_index(PEER_KEYS)["median_us"]
    peers = table.set_index(PEER_KEYS).index
    table["vs_gru"] = table["median_us"].to_numpy() / gru.reindex(peers).to_numpy()
    return table.sort_values([MACHINE, "backend", "seq_len", "hidden_size", "batch_size", "cell"],
                             kind="stable").reset_index(drop=True)


def format_markdown(table: pd.DataFrame) -> str:
    """The summary as a Markdown table (pasteable into a README, parseable by tools).

    A ``machine`` column (the CPU model) is shown only when the table spans several machines.
    """
    shown = pd.DataFrame({
        "cell": table["cell"], "backend": table["backend"],
        "params": table["backend_params"].where(~table["backend_params"].isin(["{}"]), ""),
        "T": table["seq_len"], "H": table["hidden_size"], "B": table["batch_size"],
        "status": table["status"].where(table["status"] == "ok",
                                        table["status"] + ": " + table["error_message"].fillna("")),
        "n": table["samples"], "median µs/step": table["median_us"], "IQR µs": table["iqr_us"],
        "vs GRU": table["vs_gru"],
    })
    if table[MACHINE].nunique() > 1:
        shown.insert(0, "machine", table["cpu_model"].fillna("?") + " (" + table[MACHINE].str[:8] + ")")
    return markdown(shown, {"median µs/step": ".3g", "IQR µs": ".2g", "vs GRU": ".2f"})


ACCURACY_COLUMNS = ["task", "model_activations", "cell", "backend", "backend_params", "seq_len",
                    "hidden_size", "seed",
                    "n_eval", "metric", "metric_value", "agreement", "train_step", "status", MACHINE]


def accuracy_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per accuracy point and machine (newest run wins); failures keep their error in ``status``.

    ``model_activations`` is a column only where a fine-tuned model was scored."""
    latest = latest_runs(rows, "accuracy").copy()
    failed = latest["status"] != "ok"
    latest.loc[failed, "status"] = latest["status"] + ": " + latest["error_message"].fillna("")
    order = ["task", "model_activations", "seq_len", "hidden_size", "seed", "backend", "backend_params",
             "cell", MACHINE]
    table = latest[ACCURACY_COLUMNS].sort_values(order, kind="stable", na_position="first")
    if table["model_activations"].isna().all():  # no fine-tuned model: nothing to tell apart
        table = table.drop(columns="model_activations")
    return table.reset_index(drop=True)
