"""The reference cells: PyTorch equivalence, the reluadd equations, the cost model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnbench.cells import Weights, make_cell, names
from rnnbench.cells.costs import elementwise_counts, step_cost


def test_names_lists_the_three_cells():
    assert names() == ["gru", "lstm", "reluadd"]


def test_unknown_cell_is_refused():
    with pytest.raises(ValueError, match="valid cells: gru, lstm, reluadd"):
        make_cell("rnn", 4, 4)


@pytest.mark.parametrize("cell,torch_class", [("gru", torch.nn.GRU), ("lstm", torch.nn.LSTM)])
def test_gru_and_lstm_match_torch_with_the_same_weights(cell, torch_class):
    ours = make_cell(cell, input_size=5, hidden_size=7, seed=1)
    theirs = torch_class(5, 7)
    theirs.load_state_dict({f"{k}_l0": v for k, v in ours.state_dict().items()})
    x = torch.randn(50, 3, 5, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out, state = ours(x)
        ref_out, ref_state = theirs(x)
    assert (out - ref_out).abs().max() <= 1e-5
    final_h = state[0] if cell == "lstm" else state
    ref_h = ref_state[0][0] if cell == "lstm" else ref_state[0]
    assert (final_h - ref_h).abs().max() <= 1e-5
    if cell == "lstm":
        assert (state[1] - ref_state[1][0]).abs().max() <= 1e-5


def test_weights_load_from_torch_modules_without_renaming_shapes():
    gru = make_cell("gru", 3, 4, seed=0)
    assert {n: tuple(p.shape) for n, p in gru.named_parameters()} == {
        "weight_ih": (12, 3), "weight_hh": (12, 4), "bias_ih": (12,), "bias_hh": (12,)}
    lstm = make_cell("lstm", 3, 4, seed=0)
    assert lstm.weight_hh.shape == (16, 4)


def _relu(v):
    return np.maximum(v, 0.0)


def _reluadd_by_hand(x, w: Weights):
    """The issue's reluadd equations, written out literally in float64 NumPy."""
    hidden = w.hidden_size
    h = np.zeros((x.shape[1], hidden))
    outputs = []

    def inh(v, s):
        return _relu(v - _relu(-s)) - _relu(-v - _relu(-s))

    for x_t in x.astype(np.float64):
        gi = x_t @ w.weight_ih.T.astype(np.float64) + w.bias_ih
        gh = h @ w.weight_hh.T.astype(np.float64) + w.bias_hh
        s_r = gi[:, :hidden] + gh[:, :hidden]
        s_z = gi[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden]
        n = np.clip(gi[:, 2 * hidden:] + inh(gh[:, 2 * hidden:], s_r), -1, 1)
        h = np.clip(inh(h, s_z) + inh(n, -s_z), -1, 1)
        outputs.append(h)
    return np.stack(outputs)


def test_reluadd_follows_its_equations():
    cell = make_cell("reluadd", 4, 6, seed=3)
    x = np.random.default_rng(0).standard_normal((20, 2, 4)).astype(np.float32)
    with torch.no_grad():
        out, state = cell(torch.from_numpy(x))
    expected = _reluadd_by_hand(x, Weights.from_module(cell))
    assert np.abs(out.numpy() - expected).max() <= 1e-5
    assert torch.equal(state, out[-1])
    assert out.abs().max() <= 1.0  # clip bounds the state


def test_inhibition_passes_or_shrinks():
    from rnnbench.cells.equations import clip, inh
    from rnnbench.cells.reference import TorchOps

    v = torch.tensor([0.8, -0.8, 0.8, -0.8, 0.3])
    s = torch.tensor([0.5, 0.5, -0.5, -0.5, -1.0])
    assert torch.allclose(inh(TorchOps, v, s), torch.tensor([0.8, -0.8, 0.3, -0.3, 0.0]))
    u = torch.tensor([-3.0, -0.2, 0.7, 2.0])
    assert torch.allclose(clip(TorchOps, u), torch.tensor([-1.0, -0.2, 0.7, 1.0]))


def test_seed_makes_cells_reproducible():
    a = make_cell("gru", 3, 5, seed=7).state_dict()
    b = make_cell("gru", 3, 5, seed=7).state_dict()
    c = make_cell("gru", 3, 5, seed=8).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["weight_hh"], c["weight_hh"])


def test_cost_model_counts_follow_the_definitions():
    gru, lstm, reluadd = (elementwise_counts(c) for c in ("gru", "lstm", "reluadd"))
    assert (gru["sigmoid"], gru["tanh"], gru["data_mul"], gru["relu"]) == (2, 1, 3, 0)
    assert (lstm["sigmoid"], lstm["tanh"], lstm["data_mul"]) == (3, 2, 3)
    # reluadd: no sigmoid, no tanh, no product of two data-dependent values.
    assert (reluadd["sigmoid"], reluadd["tanh"], reluadd["data_mul"]) == (0, 0, 0)
    assert reluadd["relu"] == 13


def test_step_cost_scales_with_sizes():
    cost = step_cost("gru", input_size=8, hidden_size=16)
    assert cost.weight_mul == 3 * 16 * (8 + 16)
    assert cost.data_mul == 3 * 16
    assert cost.nonlin == 3 * 16
    assert step_cost("lstm", 8, 16).weight_mul == 4 * 16 * (8 + 16)
    assert step_cost("reluadd", 8, 16).columns()["ops_data_mul"] == 0
