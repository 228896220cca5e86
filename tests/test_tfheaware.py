"""TFHE-aware fine-tuning: the integer reference forward, float gradients back, and what it saves;
the `train --activations` command over both encrypted backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rnnbench import tasks
from rnnbench.backends.tfhe import scheme
from rnnbench.cli import app
from rnnbench.tasks import checkpoints, tfheaware
from rnnbench.tasks.evaluate import accuracy_points, eval_items
from rnnbench.tasks.training import TrainConfig, train

SETTINGS = {"weight_bits": 4, "act_bits": 3, "form": "literal"}


def _trained(cell: str, tmp_path, steps: int = 200):
    data = tasks.load("digits", 8)
    trained = train(data, cell, 8, seed=0, config=TrainConfig(steps=steps))
    path = checkpoints.path_for(tmp_path / "exact", data.tag, cell, 8, 8, 0)
    checkpoints.save(path, trained.model, {"cell": cell, "input_size": 8, "hidden_size": 8,
                                           "outputs": 10, "final": {"metric_value": 0.0}})
    return data, trained.model, path


def test_forward_values_are_the_integer_references_and_gradients_reach_the_cell(tmp_path):
    for cell in ("gru", "lstm"):
        data, model, _ = _trained(cell, tmp_path, steps=20)
        qc = tfheaware.quantized(model, data, {**SETTINGS, "act_bits": 4})
        x = data.x_test[:, :32]
        logits = tfheaware.snapped_logits(model, qc, x)
        final = scheme.dequantize(scheme.run_reference(qc, x), qc)[-1]
        np.testing.assert_allclose(logits.detach().numpy(), model.readout_numpy(final), atol=1e-5)
        logits.sum().backward()
        for p in (model.cell.weight_hh, model.cell.weight_ih, model.readout.weight):
            assert p.grad is not None and torch.count_nonzero(p.grad) > 0, cell


def test_finetuning_raises_the_integer_models_accuracy_and_the_sidecar_says_for_what(tmp_path):
    data, _, path = _trained("gru", tmp_path)
    out, result = tfheaware.finetune_checkpoint(path, data, tmp_path / "tfhe", SETTINGS, steps=150)

    m = result.metrics
    assert m["tfhe_after"] > m["tfhe_before"] + 0.05, m
    # The metric is that of the integer model the backend builds from the saved weights.
    model, meta = checkpoints.load(out)
    assert abs(tfheaware.integer_metric(model, data, tfheaware.quantized(model, data, SETTINGS))
               - m["tfhe_after"]) < 1e-9
    assert meta["activations"] == "tfhe" and meta["finetune"]["from"] == str(path)
    assert meta["finetune"]["tfhe_params"] == SETTINGS
    assert checkpoints.activations(out) == "tfhe"


@pytest.mark.parametrize("backend, bad_param, message", [
    ("ckks", "ckks.relu=foo", "ckks.relu must be"),
    ("tfhe", "tfhe.security=80", "insecure"),
])
def test_train_activations_refuses_bad_input_in_one_line(tmp_path, backend, bad_param, message):
    base = ["train", "--task", "digits", "--cells", "reluadd", "--hidden", "8", "--activations", backend]
    cases = {
        "another directory": ["--models", str(tmp_path), "--from-models", str(tmp_path)],
        "to fine-tune": ["--models", str(tmp_path / "out"), "--from-models", str(tmp_path / "none")],
        message: ["--models", str(tmp_path / "out"), "-p", bad_param],
        "must be exact, ckks or tfhe": ["--models", str(tmp_path / "out"), "--activations", "bfv"],
    }
    for expected, args in cases.items():
        result = CliRunner().invoke(app, [*base, *args])
        assert result.exit_code == 2 and expected in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_simulated_tfhe_scores_the_whole_test_set_and_encryption_a_sample():
    data = tasks.load("digits", 8)
    assert eval_items("tfhe", data.n_test) == 8
    assert eval_items("tfhe", data.n_test, params={"simulate": True}) == data.n_test
    assert eval_items("tfhe", data.n_test, limit=2, params={"simulate": True}) == 2
    points = accuracy_points([data], ["gru"], ["tfhe"], [16], seed=0,
                             backend_params={"tfhe": [{"simulate": True}, {"simulate": False}]})
    assert sorted(p.batch_size for p in points) == [8, data.n_test]
