"""Compare a candidate run with a baseline, point by point, and say what changed beyond noise.

Points are matched by ``point_id``, the hash of all of a point's parameters (seed
included: another seed means other weights and inputs, so another point). Per point:
the ratio of median time per step (candidate / baseline, above 1 is slower) with a
rough 50% band, a two-sided Mann-Whitney U test on the raw timed samples, and one
mark from :func:`mark`. Like asv's ``compare``, a point is better or worse only when
the difference is both statistically significant and larger than a minimum effect,
so a tiny but real shift, or a large but noisy one, stays ``unchanged``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from rnnbench.results import stats
from rnnbench.results.queries import MACHINE, POINT_KEYS, latest_points

# Marks in the order a reader cares about them; the first two fail a CI gate.
MARKS = ("worse", "failed", "better", "unchanged", "new", "missing", "skipped")
GATING_MARKS = frozenset({"worse", "failed"})


def mark(
    baseline_status: str | None,
    candidate_status: str | None,
    ratio: float,
    p_value: float,
    alpha: float,
    min_effect: float,
) -> str:
    """The verdict for one point (status ``None``: the point is not in that run).

    ``worse``/``better``: significant (``p_value < alpha``) and the ratio beyond
    ``1 + min_effect`` (slower) or below ``1 / (1 + min_effect)`` (faster), symmetric on
    a log scale. ``failed``: the candidate errored or timed out. ``new``: no usable
    baseline. ``missing``: not in the candidate. ``skipped``: unsupported in the candidate.
    """
    if candidate_status is None:
        return "missing"
    if candidate_status == "skipped":
        return "skipped"
    if candidate_status != "ok":
        return "failed"
    if baseline_status != "ok":
        return "new"
    if p_value >= alpha or abs(math.log(ratio)) <= math.log1p(min_effect):
        return "unchanged"
    return "worse" if ratio > 1 else "better"


def min_p_value(n_a: int, n_b: int) -> float:
    """The smallest two-sided Mann-Whitney p-value ``n_a`` and ``n_b`` samples can give.

    Reached when the samples do not overlap at all; if it is not below ``alpha``, no
    difference can be called significant (e.g. 4 against 4 samples: 0.029).
    """
    return min(1.0, 2 / math.comb(n_a + n_b, n_a))


class MixedMachines(ValueError):
    """One side of a comparison holds the same point measured on several machines."""


def point_samples(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per timing point of a run: parameters, status and the timed samples.

    A file holding several runs of a point (resumed, merged) contributes its newest
    run, as the summary table does. A side must come from one machine per point (a
    machine is part of a point's identity): otherwise :class:`MixedMachines`.
    """
    latest, ok = latest_points(rows)
    mixed = latest["point_id"].duplicated()
    if mixed.any():
        machines = sorted(latest.loc[latest["point_id"] == latest.loc[mixed, "point_id"].iloc[0], MACHINE])
        raise MixedMachines(f"the same point was measured on {len(machines)} machines "
                            f"({', '.join(m[:8] for m in machines)}); compare one machine at a time")
    samples = ok.groupby("point_id")["time_per_step_s"].agg(list)
    table = latest[["point_id", *POINT_KEYS, "status"]].set_index("point_id")
    table["samples"] = samples.reindex(table.index)
    return table


def compare(
    baseline: pd.DataFrame, candidate: pd.DataFrame, alpha: float = 0.01, min_effect: float = 0.05
) -> pd.DataFrame:
    """One line per point of either run: medians, ratio, band, p-value, mark (rows -> table)."""
    base, cand = point_samples(baseline), point_samples(candidate)
    params = pd.concat([base[POINT_KEYS], cand[POINT_KEYS]])
    table = params[~params.index.duplicated()].assign(
        baseline_status=base["status"], candidate_status=cand["status"])
    lines: list[dict[str, Any]] = []
    for point_id in table.index:
        a = _samples(base, point_id)
        b = _samples(cand, point_id)
        line: dict[str, Any] = {**dict.fromkeys(_MEASURES, math.nan),
                                "baseline_median_us": stats.median(a) * 1e6 if a else math.nan,
                                "candidate_median_us": stats.median(b) * 1e6 if b else math.nan}
        if a and b:
            ratio, low, high = stats.ratio_with_spread(b, a)
            line.update(ratio=ratio, ratio_low=low, ratio_high=high,
                        p_value=stats.mann_whitney_p(b, a), min_p_value=min_p_value(len(a), len(b)))
        lines.append(line)
    measures = pd.DataFrame(lines, columns=list(_MEASURES), dtype=float)  # columns even when empty
    table = pd.concat([table.reset_index(names="point_id"), measures], axis=1)
    table["mark"] = [
        mark(_status(r.baseline_status), _status(r.candidate_status), r.ratio, r.p_value,
             alpha, min_effect)
        for r in table.itertuples()
    ]
    return table.sort_values(["backend", "seq_len", "hidden_size", "batch_size", "cell"],
                             kind="stable").reset_index(drop=True)


_MEASURES = ("baseline_median_us", "candidate_median_us", "ratio", "ratio_low", "ratio_high",
             "p_value", "min_p_value")


def _samples(table: pd.DataFrame, point_id: str) -> list[float]:
    if point_id not in table.index:
        return []
    samples = table.at[point_id, "samples"]
    return samples if isinstance(samples, list) else []


def _status(value: Any) -> str | None:
    return None if pd.isna(value) else value


def summarize(table: pd.DataFrame, alpha: float) -> dict[str, Any]:
    """Counts per mark, the geometric mean of the ratios, and whether a CI gate should fail."""
    compared = table["ratio"].dropna()
    return {
        "points": len(table),
        "compared": len(compared),
        "geomean_ratio": stats.geometric_mean(compared.tolist()),
        "marks": {m: int((table["mark"] == m).sum()) for m in MARKS if (table["mark"] == m).any()},
        "underpowered": int((table["min_p_value"] >= alpha).sum()),
        "regressed": bool(table["mark"].isin(GATING_MARKS).any()),
    }


def environment_note(baseline: pd.DataFrame, candidate: pd.DataFrame) -> str | None:
    """A warning when the two runs were measured on different CPUs (ratios then mix both)."""
    a = sorted(baseline["cpu_model"].dropna().unique())
    b = sorted(candidate["cpu_model"].dropna().unique())
    if a == b:
        return None
    return f"baseline measured on {', '.join(a) or '?'}, candidate on {', '.join(b) or '?'}"


def format_markdown(table: pd.DataFrame, summary: dict[str, Any]) -> str:
    """The comparison as a Markdown table followed by the summary line."""
    def num(value: float, fmt: str) -> str:
        return format(value, fmt) if pd.notna(value) else "–"

    lines = ["| cell | backend | params | T | H | B | baseline µs/step | candidate µs/step | ratio "
             "| 50% band | p | mark |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in table.itertuples():
        params = "" if r.backend_params in (None, "{}") else r.backend_params
        band = f"{r.ratio_low:.2f}–{r.ratio_high:.2f}" if pd.notna(r.ratio) else "–"
        lines.append(
            f"| {r.cell} | {r.backend} | {params} | {r.seq_len} | {r.hidden_size} | {r.batch_size} "
            f"| {num(r.baseline_median_us, '.3g')} | {num(r.candidate_median_us, '.3g')} "
            f"| {num(r.ratio, '.3f')} | {band} | {num(r.p_value, '.2g')} | {r.mark} |"
        )
    return "\n".join([*lines, "", summary_line(summary)])


def summary_line(summary: dict[str, Any]) -> str:
    counts = ", ".join(f"{n} {m}" for m, n in summary["marks"].items())
    geomean = summary["geomean_ratio"]
    mean = f"{geomean:.3f}" if math.isfinite(geomean) else "–"
    return (f"geometric mean ratio (candidate/baseline) over {summary['compared']} points: {mean}; "
            f"{counts or 'no points'}")
