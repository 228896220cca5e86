"""The summary table of a sweep: median time per step, IQR, and the ratio to GRU."""

from __future__ import annotations

import pandas as pd

from rnnbench.results import stats

POINT_KEYS = ["cell", "backend", "backend_params", "seq_len", "hidden_size", "batch_size",
              "input_size", "threads", "seed", "task"]
# A point is compared with GRU on the same backend and configuration.
_PEER_KEYS = [k for k in POINT_KEYS if k != "cell"]


def timed_samples(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows that carry statistics: successful timing samples, warm-up excluded."""
    kind = rows["kind"].fillna("timing")
    # astype(bool): read back from Parquet the column is object dtype, where ~True is -2 (truthy).
    warmup = rows["is_warmup"].fillna(False).astype(bool)
    return rows[(kind == "timing") & (rows["status"] == "ok") & ~warmup]


def latest_points(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(points, samples)``: one row per timing point from its latest run, and that run's samples.

    A point measured again (a rerun, a merged file) is represented by its newest
    measurement only, so old and new samples are never pooled.
    """
    timing = rows[rows["kind"].fillna("timing") == "timing"]
    latest = timing.sort_values("started_at").drop_duplicates("point_id", keep="last")
    samples = timed_samples(timing).merge(latest[["point_id", "run_id"]], on=["point_id", "run_id"])
    return latest, samples


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per point (latest run wins), with failed and skipped points kept as lines."""
    latest, ok = latest_points(rows)
    grouped = ok.groupby("point_id")["time_per_step_s"]
    table = latest[POINT_KEYS + ["point_id", "status", "error_message"]].copy()
    table["task"] = table["task"].fillna("")  # a usable index key for timing-only points
    table["samples"] = table["point_id"].map(grouped.size()).fillna(0).astype(int)
    table["median_us"] = table["point_id"].map(grouped.median() * 1e6)
    table["iqr_us"] = table["point_id"].map(grouped.agg(stats.iqr) * 1e6)
    gru = table[table["cell"] == "gru"].set_index(_PEER_KEYS)["median_us"]
    peers = table.set_index(_PEER_KEYS).index
    table["vs_gru"] = table["median_us"].to_numpy() / gru.reindex(peers).to_numpy()
    return table.sort_values(["backend", "seq_len", "hidden_size", "batch_size", "cell"],
                             kind="stable").reset_index(drop=True)


def format_markdown(table: pd.DataFrame) -> str:
    """The summary as a Markdown table (pasteable into a README, parseable by tools)."""
    header = ("| cell | backend | params | T | H | B | status | n | median µs/step | IQR µs "
              "| vs GRU |\n|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|")
    lines = [header]
    for r in table.itertuples():
        def num(v, fmt):
            return format(v, fmt) if pd.notna(v) else "–"
        params = "" if r.backend_params in (None, "{}") else r.backend_params
        status = r.status if r.status == "ok" else f"{r.status}: {r.error_message}"
        lines.append(
            f"| {r.cell} | {r.backend} | {params} | {r.seq_len} | {r.hidden_size} | "
            f"{r.batch_size} | {status} | {r.samples} | {num(r.median_us, '.3g')} | "
            f"{num(r.iqr_us, '.2g')} | {num(r.vs_gru, '.2f')} |"
        )
    return "\n".join(lines)


ACCURACY_COLUMNS = ["task", "cell", "backend", "backend_params", "seq_len", "hidden_size", "seed",
                    "n_eval", "metric", "metric_value", "agreement", "train_step", "status"]


def accuracy_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per accuracy point (latest run wins); failures keep their error in ``status``."""
    accuracy = rows[rows["kind"] == "accuracy"]
    latest = accuracy.sort_values("started_at").drop_duplicates("point_id", keep="last").copy()
    failed = latest["status"] != "ok"
    latest.loc[failed, "status"] = latest["status"] + ": " + latest["error_message"].fillna("")
    return latest[ACCURACY_COLUMNS].sort_values(
        ["task", "seq_len", "hidden_size", "seed", "backend", "backend_params", "cell"], kind="stable"
    ).reset_index(drop=True)


def markdown(table: pd.DataFrame) -> str:
    """Any table as Markdown: numbers right-aligned with 4 significant digits, missing as –."""
    numeric = [pd.api.types.is_numeric_dtype(table[c]) for c in table.columns]
    lines = ["| " + " | ".join(table.columns) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for values in table.itertuples(index=False):
        cells = []
        for value, is_number in zip(values, numeric, strict=True):
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                cells.append("–")
            elif is_number and isinstance(value, float):
                cells.append(format(value, ".4g"))
            else:
                cells.append(" ".join(str(value).split()).replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
