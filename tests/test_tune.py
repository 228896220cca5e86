"""``rnnbench tune``: its planning function and one tiny run end to end."""

from __future__ import annotations

import json
import re

import pytest
import torch
from typer.testing import CliRunner

from rnnbench.cli import app
from rnnbench.cli.common import InputError
from rnnbench.cli.tune import plan_tune
from rnnbench.results import store

runner = CliRunner()
DEFAULTS = {"cells_": "gru,lstm,reluadd", "seq_len": 100, "hidden": 64, "steps": 2000, "batch_size": 64,
            "curve_every": 100, "seed": 0, "threads": 1, "lrs": "1e-3,2e-3,5e-3", "forget_biases": "0,1",
            "settings": [], "longest_t": None, "budget_cpu_min": 15.0, "summary_format": "md"}


def plan(**options):
    return plan_tune(**{**DEFAULTS, **options})


def test_the_default_plan_tunes_every_cell_on_the_grid_and_searches_nothing():
    p = plan()
    assert p.grid_cells == ["gru", "lstm", "reluadd"] and p.given == {}
    assert p.lrs == [1e-3, 2e-3, 5e-3] and p.forget_biases == [0.0, 1.0]
    assert (p.base.steps, p.base.batch_size, p.base.curve_every) == (2000, 64, 100)
    assert p.longest_t == [] and p.budget_cpu_s == 900.0


def test_a_given_setting_skips_that_cells_grid_and_the_search_is_ascending():
    p = plan(settings=["lstm=5e-3:1", "reluadd=2e-3"], longest_t="800,100,400,200", budget_cpu_min=0.5)
    assert p.grid_cells == ["gru"]
    assert (p.given["lstm"].lr, p.given["lstm"].lstm_forget_bias) == (5e-3, 1.0)
    assert (p.given["reluadd"].lr, p.given["reluadd"].steps) == (2e-3, 2000)
    assert p.longest_t == [100, 200, 400, 800] and p.budget_cpu_s == 30.0


@pytest.mark.parametrize(("options", "message"), [
    ({"cells_": "gru,rnn"}, "unknown cells 'rnn'"),
    ({"lrs": "1e-3,fast"}, "--lrs: 'fast' is not a number"),
    ({"lrs": "0"}, "--lrs must be positive"),
    ({"forget_biases": "nan"}, "--forget-biases must be finite"),
    ({"settings": ["gru"]}, "expected CELL=LR"),
    ({"settings": ["gru=5e-3:1"]}, "only the LSTM has a forget-gate bias"),
    ({"settings": ["rnn=1e-3"]}, "'rnn' is not one of --cells"),
    ({"cells_": "gru", "settings": ["lstm=1e-3"]}, "'lstm' is not one of --cells (gru)"),
    ({"settings": ["gru=1e-3,2e-3"]}, "one value each"),
    ({"longest_t": "100,1"}, "--longest-t: 1 is not at least 2"),
    ({"seq_len": 1}, "--seq-len must be at least 2"),
    ({"budget_cpu_min": 0.0}, "--budget-cpu-min must be positive"),
    ({"steps": 0}, "--steps must be at least 1"),
    ({"summary_format": "xml"}, "--format must be"),
])
def test_bad_options_are_refused_by_the_plan(options, message):
    with pytest.raises(InputError, match=re.escape(message)):
        plan(**options)


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "r"
    result = runner.invoke(app, ["tune", "--lrs", "1e-3,x", "--out", str(out)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--lrs: 'x' is not a number" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_tune_runs_the_grid_then_the_search_and_stores_every_trial(tmp_path):
    threads = torch.get_num_threads()
    out = tmp_path / "tune.parquet"
    try:
        result = runner.invoke(app, [
            "tune", "--cells", "reluadd,lstm", "--seq-len", "8", "--hidden", "4", "--steps", "4",
            "--batch-size", "8", "--curve-every", "2", "--lrs", "1e-3,1e-2", "--forget-biases", "1",
            "--setting", "reluadd=2e-3", "--longest-t", "8,16", "--budget-cpu-min", "0.005",
            "--format", "json", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout)
    grid = [t for t in table if t["stage"] == "grid"]
    assert [(t["cell"], t["lr"], t["lstm_forget_bias"]) for t in grid] == [("lstm", 1e-3, 1.0),
                                                                          ("lstm", 1e-2, 1.0)]
    assert sum(t["chosen"] for t in grid) == 1 and all(t["steps"] == 4 for t in grid)
    search = [t for t in table if t["stage"] == "longest_t"]
    best_lr = next(t["lr"] for t in grid if t["chosen"])
    first = {t["cell"]: t for t in search if t["seq_len"] == 8}
    assert first["reluadd"]["lr"] == 2e-3 and first["lstm"]["lr"] == best_lr
    for t in search:  # trained until solved or out of budget, not for the grid's 4 steps
        assert t["chosen"] or t["cpu_s"] >= 0.3
        assert not t["chosen"] or t["solved_at_cpu_s"] <= 0.3
    rows, footer = store.read(out)
    assert set(rows["kind"]) == {"tune"} and len(rows) == 3 * len(table)
    params = [json.loads(p) for p in rows["backend_params"]]
    assert {p["stage"] for p in params} == {"grid", "longest_t"}
    assert all(p["budget_cpu_s"] == 0.3 for p in params if p["stage"] == "longest_t")
    assert footer["runs"][0]["settings"]["longest_t"] == [8, 16]
