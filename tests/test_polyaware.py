"""Polynomial-aware fine-tuning: the CKKS stand-ins in training, and what the sidecar records."""

from __future__ import annotations

import json

import numpy as np

from rnnbench import tasks
from rnnbench.backends.ckks import poly
from rnnbench.cells import Weights
from rnnbench.cells.weights import run_numpy
from rnnbench.tasks import checkpoints, polyaware
from rnnbench.tasks.training import TrainConfig, train

# relu of degree 6 on a trained model's interval is a poor stand-in: room to improve.
PARAMS = {"relu_degree": 6}


def test_finetuning_raises_plaintext_polynomial_accuracy(tmp_path):
    data = tasks.load("digits", 8)
    trained = train(data, "reluadd", 8, seed=0, config=TrainConfig(steps=300))
    path = checkpoints.path_for(tmp_path / "exact", data.tag, "reluadd", 8, 8, 0)
    checkpoints.save(path, trained.model, {"cell": "reluadd", "input_size": 8, "hidden_size": 8,
                                           "outputs": 10, "final": {"metric_value": 0.0}})
    out, result = polyaware.finetune_checkpoint(path, data, tmp_path / "ckks", PARAMS, steps=150)

    m = result.metrics
    assert m["poly_after"] > m["poly_before"] + 0.05, m
    # The metric is that of the plaintext polynomial cell the encrypted backend computes.
    model, meta = checkpoints.load(out)
    stand_ins = polyaware.ckks_stand_ins(model, data, PARAMS)
    x, y = data.x_test, data.y_test
    hidden = run_numpy(Weights.from_module(model.cell), x, poly.PlainOps(stand_ins))[-1]
    accuracy = float(np.mean(np.argmax(model.readout_numpy(hidden), -1) == y))
    assert abs(accuracy - m["poly_after"]) <= 2 / len(y)  # float32 torch against float64 NumPy
    # The sidecar: polynomial-aware, with the polynomials the backend fits to the saved model.
    assert meta["activations"] == "ckks" and meta["finetune"]["from"] == str(path)
    assert meta["finetune"]["polys_match"] == result.polys_match
    if result.polys_match:
        assert stand_ins == result.stand_ins
    assert json.loads(json.dumps(meta["polys"]))["relu"]["degree"] == 6
